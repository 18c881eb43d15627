"""The torch layer: tensors to the binding's raw arguments, and the torch custom ops (etap::...).

Each op has a plain Python implementation (`*_impl`) that the eager paths call directly (no dispatcher on the
hot path) and a `torch.library.custom_op` around it with a fake implementation, so that torch.compile
(fullgraph=True) traces calls as single opaque nodes. Everything runs on the current CUDA stream of the
tensors' device, never synchronises (except checked mode) and allocates only what the caller did not pass.

Checked here: what the library cannot see (rank, device, integer and fp32 dtypes, contiguity of the last
dimension, shapes that must agree across tensors). Everything else (supported head dims, page sizes, rows,
strides, alignment, buffer sizes) is the library's to check, so its messages reach the caller unchanged.
"""

# No `from __future__ import annotations` here: torch.library.custom_op infers each op's schema from the real
# annotation objects.
from typing import Optional, Tuple

import torch

from etap import _C, _layout

InvalidArgumentError = _C.InvalidArgumentError

_DTYPE_CODES = {torch.bfloat16: _C.DTYPE_BF16, torch.float16: _C.DTYPE_FP16, torch.float32: _C.DTYPE_FP32}
if hasattr(torch, "float8_e4m3fn"):
    _DTYPE_CODES[torch.float8_e4m3fn] = _C.DTYPE_FP8_E4M3
# The dtypes of an FP8 KV cache's bytes (FlashMLA and vLLM keep them as uint8 or float8_e4m3fn).
FP8_CACHE_DTYPES = tuple(d for d in (torch.uint8, getattr(torch, "float8_e4m3fn", None)) if d is not None)

Q_LAYOUT = "[batch, s_q, h_q, d_qk]"
KV_LAYOUT = "[num_pages, page_size, h_kv, d_qk]"
BT_LAYOUT = "[batch, max_pages_per_seq] (int32 page ids)"
OUT_LAYOUT = "[batch, s_q, h_q, d_v]"
VARLEN_Q_LAYOUT = "[total_q, h_q, d_qk] (packed: cu_seqlens_q)"
VARLEN_OUT_LAYOUT = "[total_q, h_q, d_v]"
VARLEN_LSE_LAYOUT = "[h_q, total_q] (float32)"
CU_LAYOUT = "[batch + 1] (int32 offsets of the packed query tokens)"
LSE_LAYOUT = "[batch, h_q, s_q] (float32)"


def dtype_code(name: str, tensor: torch.Tensor) -> int:
    code = _DTYPE_CODES.get(tensor.dtype)
    if code is None:
        raise InvalidArgumentError(
            f"{name} has dtype {tensor.dtype}; etap takes torch.bfloat16 or torch.float16 tensors (and "
            "torch.float32 for merge_states' out)")
    return code


def check_device(name: str, tensor: torch.Tensor, device_index: int) -> None:
    """`tensor` must be a CUDA tensor on the device of the call (device_index, the query's)."""
    index = tensor.get_device()
    if index != device_index:
        where = "on the CPU" if index < 0 else f"on cuda:{index}"
        raise InvalidArgumentError(
            f"{name} is {where}; etap needs every tensor of a call on the query's CUDA device cuda:{device_index}")


def check_int32(name: str, tensor: torch.Tensor, layout: str) -> None:
    if tensor.dtype != torch.int32:
        raise InvalidArgumentError(f"{name} must be torch.int32 {layout}; got {tensor.dtype}")


def check_contiguous_last(name: str, tensor: torch.Tensor) -> None:
    if tensor.shape[-1] > 1 and tensor.stride(-1) != 1:
        raise InvalidArgumentError(
            f"{name} must have a contiguous last dimension (stride 1); got strides {list(tensor.stride())}")


def check_buffer(name: str, tensor: torch.Tensor, device_index: int) -> None:
    check_device(name, tensor, device_index)
    if not tensor.is_contiguous():
        raise InvalidArgumentError(f"{name} must be a contiguous tensor (an opaque byte buffer)")


def query_device(q: torch.Tensor) -> int:
    index = q.get_device()
    if index < 0:
        raise InvalidArgumentError("q is on the CPU; etap needs CUDA tensors (every tensor on one GPU)")
    return index


class _OnDevice:
    """Makes `index` the current CUDA device for the library (which launches there) when it is not."""

    __slots__ = ("index", "previous")

    def __init__(self, index: int):
        self.index = index
        self.previous = -1

    def __enter__(self):
        current = torch.cuda.current_device()
        if current != self.index:
            self.previous = current
            torch.cuda.set_device(self.index)

    def __exit__(self, *exc):
        if self.previous >= 0:
            torch.cuda.set_device(self.previous)


# torch.cuda.current_stream(i).cuda_stream builds a Stream object (~4 µs a call on an H200 host); the raw
# query behind it is what the hot path needs.
_raw_stream = getattr(getattr(torch, "_C", None), "_cuda_getCurrentRawStream", None)


def stream_handle(device_index: int) -> int:
    if _raw_stream is not None:
        return _raw_stream(device_index)
    return torch.cuda.current_stream(device_index).cuda_stream


def max_pages_per_seq(block_table: torch.Tensor, flashmla_table: bool, page_size: int) -> int:
    """block_table.shape[1], or with FlashMLA's semantics the row width its memory really has."""
    if not flashmla_table:
        return block_table.shape[1]
    return _layout.block_table_capacity(tuple(block_table.shape), block_table.stride(0),
                                        block_table.untyped_storage().nbytes() // 4,
                                        block_table.storage_offset(), page_size)


def buffer_sizes(problem: Tuple[int, ...], num_sms: int) -> Tuple[int, int]:
    return _C.buffer_sizes(problem, num_sms)


# A constant under torch.compile: traced code calls it with static shapes and embeds the result.
_traced_buffer_sizes = torch.compiler.assume_constant_result(buffer_sizes)


# ---------------------------------------------------------------------------------------------------- plan

def plan_impl(seqlens: torch.Tensor, plan: torch.Tensor, block_table: Optional[torch.Tensor], s_q: int, h_q: int,
              h_kv: int, page_size: int, flashmla_table: bool, num_sms: int) -> None:
    device = seqlens.get_device()
    if device < 0:
        raise InvalidArgumentError("cache_seqlens is on the CPU; etap plans on the GPU from device seqlens")
    check_int32("cache_seqlens", seqlens, "[batch]")
    _layout.check_rank("cache_seqlens", seqlens.shape, 1, "[batch]")
    if seqlens.stride(0) != 1 and seqlens.shape[0] > 1:
        raise InvalidArgumentError("cache_seqlens must be contiguous")
    check_buffer("plan", plan, device)
    max_pages = 0
    if block_table is not None:
        check_device("block_table", block_table, device)
        _layout.check_rank("block_table", block_table.shape, 2, BT_LAYOUT)
        max_pages = max_pages_per_seq(block_table, flashmla_table, page_size)
    problem = _layout.problem(seqlens.shape[0], s_q, h_q, h_kv=h_kv, page_size=page_size,
                              max_pages_per_seq=max_pages)
    with _OnDevice(device):
        _C.plan_from_seqlens(problem, seqlens.data_ptr(), plan.data_ptr(), plan.nbytes, stream_handle(device),
                             num_sms)


@torch.library.custom_op("etap::plan", mutates_args=("plan",))
def plan_op(seqlens: torch.Tensor, plan: torch.Tensor, block_table: Optional[torch.Tensor], s_q: int, h_q: int,
            h_kv: int, page_size: int, flashmla_table: bool, num_sms: int) -> None:
    plan_impl(seqlens, plan, block_table, s_q, h_q, h_kv, page_size, flashmla_table, num_sms)


@plan_op.register_fake
def _plan_fake(seqlens, plan, block_table, s_q, h_q, h_kv, page_size, flashmla_table, num_sms) -> None:
    return None


# -------------------------------------------------------------------------------------------------- decode

def is_fp8_cache(kv_cache: torch.Tensor) -> bool:
    return kv_cache.dtype in FP8_CACHE_DTYPES


def check_descale(name: str, scale: Optional[torch.Tensor], device_index: int) -> None:
    """An FP8 scale: one float32 element on the call's device (the library checks null and alignment)."""
    if scale is None:
        return
    check_device(name, scale, device_index)
    if scale.dtype != torch.float32 or scale.numel() != 1:
        raise InvalidArgumentError(
            f"{name} must be a torch.float32 tensor of one element (a per-tensor scale); got {scale.dtype} of "
            f"shape {list(scale.shape)}")


def _decode_layout(q, kv_cache, block_table, seqlens, plan, workspace, out, lse, flashmla_table,
                   kv_format=_C.KV_DENSE):
    """Checks what the library cannot see and derives the binding's problem tuple and strides."""
    device = query_device(q)
    _layout.check_rank("q", q.shape, 4, Q_LAYOUT)
    _layout.check_rank("k_cache", kv_cache.shape, 4, KV_LAYOUT)
    _layout.check_rank("block_table", block_table.shape, 2, BT_LAYOUT)
    _layout.check_rank("out", out.shape, 4, OUT_LAYOUT)
    _layout.check_rank("lse", lse.shape, 3, LSE_LAYOUT)
    for name, tensor in (("k_cache", kv_cache), ("block_table", block_table), ("cache_seqlens", seqlens),
                         ("out", out), ("lse", lse)):
        check_device(name, tensor, device)
    check_buffer("plan", plan, device)
    check_buffer("workspace", workspace, device)
    check_int32("block_table", block_table, BT_LAYOUT)
    check_int32("cache_seqlens", seqlens, "[batch]")
    if lse.dtype != torch.float32:
        raise InvalidArgumentError(f"lse must be torch.float32 {LSE_LAYOUT}; got {lse.dtype}")
    for name, tensor in (("q", q), ("k_cache", kv_cache), ("block_table", block_table), ("out", out)):
        check_contiguous_last(name, tensor)

    batch, s_q, h_q, d_qk = q.shape
    num_pages, page_size, h_kv, kv_dim = kv_cache.shape
    d_v = out.shape[3]
    if kv_format != _C.KV_DENSE and not is_fp8_cache(kv_cache):
        raise InvalidArgumentError(f"an FP8 kv_format needs a k_cache of torch.uint8 or torch.float8_e4m3fn bytes; "
                                   f"got {kv_cache.dtype}")
    if kv_format == _C.KV_FP8_DEEPSEEK_V32:
        if kv_dim != _layout.FP8_DEEPSEEK_V32_TOKEN_BYTES:
            raise InvalidArgumentError(f"k_cache's last dimension ({kv_dim}) must be "
                                       f"{_layout.FP8_DEEPSEEK_V32_TOKEN_BYTES} bytes in the DeepSeek-V3.2 format")
    elif kv_dim != d_qk:
        raise InvalidArgumentError(
            f"k_cache's last dimension ({kv_dim}) must equal q's head dim ({d_qk}): K is the whole cache row")
    _layout.check_shape("block_table", block_table.shape[:1], (batch,), f"in its first dimension {BT_LAYOUT}")
    _layout.check_shape("cache_seqlens", seqlens.shape, (batch,), "[batch]")
    if seqlens.stride(0) != 1 and batch > 1:
        raise InvalidArgumentError("cache_seqlens must be contiguous")
    _layout.check_shape("out", out.shape[:3], (batch, s_q, h_q), f"in its first three dimensions {OUT_LAYOUT}")
    _layout.check_shape("lse", lse.shape, (batch, h_q, s_q), LSE_LAYOUT)

    max_pages = max_pages_per_seq(block_table, flashmla_table, page_size)
    bt_stride = block_table.stride(0) if batch > 1 else max(block_table.stride(0), max_pages)
    kv_dtype = _C.DTYPE_FP8_E4M3 if kv_format != _C.KV_DENSE else dtype_code("k_cache", kv_cache)
    problem = (batch, s_q, h_q, h_kv, d_qk, d_v, page_size, num_pages, max_pages, dtype_code("q", q), kv_dtype,
               dtype_code("out", out), kv_format)
    qs = _layout.strides_for_etap(q.shape[:3], q.stride()[:3], d_qk)
    ks = _layout.strides_for_etap(kv_cache.shape[:3], kv_cache.stride()[:3], kv_dim)
    os_ = _layout.strides_for_etap(out.shape[:3], out.stride()[:3], d_v)
    ls = _layout.strides_for_etap(lse.shape, lse.stride(), 1)
    return device, problem, qs, ks, os_, bt_stride, ls


# The checks and the layout arithmetic above cost ~35 µs of host time per call in Python, more than the
# kernel at short context. A call whose tensors agree with an earlier valid call in everything the checks
# read (shapes, strides, dtypes, devices, buffer sizes, the block table's storage) reuses that call's layout;
# pointers and scalars are read afresh every call. Invalid calls raise before anything is cached.
_layouts: dict = {}
_MAX_LAYOUTS = 512


def _layout_key(q, kv_cache, block_table, seqlens, plan, workspace, out, lse, flashmla_table, kv_format):
    table_storage = None
    if flashmla_table:
        table_storage = (block_table.untyped_storage().nbytes(), block_table.storage_offset())
    return (q.shape, q.stride(), q.dtype, q.get_device(), kv_cache.shape, kv_cache.stride(), kv_cache.dtype,
            kv_cache.get_device(), block_table.shape, block_table.stride(), block_table.dtype,
            block_table.get_device(), table_storage, seqlens.shape, seqlens.stride(), seqlens.dtype,
            seqlens.get_device(), out.shape, out.stride(), out.dtype, out.get_device(), lse.shape, lse.stride(),
            lse.dtype, lse.get_device(), plan.get_device(), plan.is_contiguous(), plan.nbytes,
            workspace.get_device(), workspace.is_contiguous(), workspace.nbytes, flashmla_table, kv_format)


def decode_impl(q: torch.Tensor, kv_cache: torch.Tensor, block_table: torch.Tensor, seqlens: torch.Tensor,
                plan: torch.Tensor, workspace: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
                softmax_scale: float, causal: bool, lse_base: int, flashmla_table: bool, num_sms: int,
                checked: bool, kv_format: int = _C.KV_DENSE, descale_k: Optional[torch.Tensor] = None,
                descale_q: Optional[torch.Tensor] = None) -> None:
    """kv_format: the library's KV_* code (an FP8 one takes a uint8/float8_e4m3fn cache); descale_k and
    descale_q: the fp32 scales of FP8 formats, passed to the library as device addresses (None: null)."""
    key = _layout_key(q, kv_cache, block_table, seqlens, plan, workspace, out, lse, flashmla_table, kv_format)
    layout = _layouts.get(key)
    if layout is None:
        layout = _decode_layout(q, kv_cache, block_table, seqlens, plan, workspace, out, lse, flashmla_table,
                                kv_format)
        if len(_layouts) >= _MAX_LAYOUTS:
            _layouts.clear()
        _layouts[key] = layout
    device, problem, qs, ks, os_, bt_stride, ls = layout
    scale_k = scale_q = 0
    if descale_k is not None or descale_q is not None:
        check_descale("descale_k", descale_k, device)
        check_descale("descale_q", descale_q, device)
        scale_k = 0 if descale_k is None else descale_k.data_ptr()
        scale_q = 0 if descale_q is None else descale_q.data_ptr()
    with _OnDevice(device):
        _C.decode(problem, q.data_ptr(), qs[0], qs[1], qs[2], kv_cache.data_ptr(), ks[0], ks[1], ks[2],
                  block_table.data_ptr(), bt_stride, seqlens.data_ptr(), out.data_ptr(), os_[0], os_[1],
                  os_[2], lse.data_ptr(), ls[0], ls[1], ls[2], float(softmax_scale), bool(causal), int(lse_base),
                  plan.data_ptr(), plan.nbytes, workspace.data_ptr(), workspace.nbytes, stream_handle(device),
                  int(num_sms), bool(checked), scale_k, scale_q)


def decode_problem(q: torch.Tensor, kv_cache: torch.Tensor, d_v: int,
                   kv_format: int = _C.KV_DENSE) -> Tuple[int, ...]:
    """The problem tuple of a call, for buffer sizes (the ones that depend on batch, rows, h_kv, d_v)."""
    _layout.check_rank("q", q.shape, 4, Q_LAYOUT)
    _layout.check_rank("k_cache", kv_cache.shape, 4, KV_LAYOUT)
    batch, s_q, h_q, d_qk = q.shape
    return _layout.sizing_problem(batch, s_q, h_q, h_kv=kv_cache.shape[2], d_qk=d_qk, d_v=d_v,
                                  page_size=kv_cache.shape[1], num_pages=kv_cache.shape[0],
                                  q_dtype=_DTYPE_CODES.get(q.dtype, _C.DTYPE_BF16),
                                  kv_dtype=(_C.DTYPE_FP8_E4M3 if kv_format != _C.KV_DENSE
                                            else _DTYPE_CODES.get(kv_cache.dtype, _C.DTYPE_BF16)),
                                  kv_format=kv_format)


def new_workspace(q: torch.Tensor, kv_cache: torch.Tensor, d_v: int, num_sms: int, traced: bool = False,
                  kv_format: int = _C.KV_DENSE):
    sizes = _traced_buffer_sizes if traced else buffer_sizes
    return torch.empty(sizes(decode_problem(q, kv_cache, d_v, kv_format), num_sms)[1], dtype=torch.uint8,
                       device=q.device)


def new_outputs(q: torch.Tensor, d_v: int) -> Tuple[torch.Tensor, torch.Tensor]:
    batch, s_q, h_q, _ = q.shape
    out = q.new_empty((batch, s_q, h_q, d_v))  # new_empty: no device argument to parse (~7 µs less each)
    lse = q.new_empty((batch, h_q, s_q), dtype=torch.float32)
    return out, lse


@torch.library.custom_op("etap::decode_out", mutates_args=("workspace", "out", "lse"))
def decode_out_op(q: torch.Tensor, kv_cache: torch.Tensor, block_table: torch.Tensor, seqlens: torch.Tensor,
                  plan: torch.Tensor, workspace: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
                  softmax_scale: float, causal: bool, lse_base: int, flashmla_table: bool, num_sms: int,
                  checked: bool, kv_format: int = 0, descale_k: Optional[torch.Tensor] = None,
                  descale_q: Optional[torch.Tensor] = None) -> None:
    decode_impl(q, kv_cache, block_table, seqlens, plan, workspace, out, lse, softmax_scale, causal, lse_base,
                flashmla_table, num_sms, checked, kv_format, descale_k, descale_q)


@decode_out_op.register_fake
def _decode_out_fake(q, kv_cache, block_table, seqlens, plan, workspace, out, lse, softmax_scale, causal,
                     lse_base, flashmla_table, num_sms, checked, kv_format=0, descale_k=None,
                     descale_q=None) -> None:
    return None


@torch.library.custom_op("etap::decode", mutates_args=())
def decode_op(q: torch.Tensor, kv_cache: torch.Tensor, block_table: torch.Tensor, seqlens: torch.Tensor,
              plan: torch.Tensor, d_v: int, softmax_scale: float, causal: bool, lse_base: int,
              flashmla_table: bool, num_sms: int, checked: bool, kv_format: int = 0,
              descale_k: Optional[torch.Tensor] = None,
              descale_q: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Functional form: allocates out, lse and the workspace (for traced code that passes none)."""
    _layout.check_rank("q", q.shape, 4, Q_LAYOUT)
    out, lse = new_outputs(q, d_v)
    workspace = new_workspace(q, kv_cache, d_v, num_sms, kv_format=kv_format)
    decode_impl(q, kv_cache, block_table, seqlens, plan, workspace, out, lse, softmax_scale, causal, lse_base,
                flashmla_table, num_sms, checked, kv_format, descale_k, descale_q)
    return out, lse


@decode_op.register_fake
def _decode_fake(q, kv_cache, block_table, seqlens, plan, d_v, softmax_scale, causal, lse_base, flashmla_table,
                 num_sms, checked, kv_format=0, descale_k=None, descale_q=None):
    return new_outputs(q, d_v)


# -------------------------------------------------------------------------------------------- merge_states

def merge_impl(o_states: torch.Tensor, lse_states: torch.Tensor, out: torch.Tensor, lse_out: torch.Tensor,
               lse_base: int) -> None:
    device = o_states.get_device()
    if device < 0:
        raise InvalidArgumentError("o_states is on the CPU; etap needs CUDA tensors")
    for name, tensor in (("lse_states", lse_states), ("out", out), ("lse_out", lse_out)):
        check_device(name, tensor, device)
    _layout.check_rank("o_states", o_states.shape, 3, "[num_states, rows, dim]")
    num_states, rows, dim = o_states.shape
    _layout.check_shape("lse_states", lse_states.shape, (num_states, rows), "[num_states, rows]")
    _layout.check_shape("out", out.shape, (rows, dim), "[rows, dim]")
    _layout.check_shape("lse_out", lse_out.shape, (rows,), "[rows]")
    for name, tensor in (("o_states", o_states), ("lse_states", lse_states), ("lse_out", lse_out)):
        if tensor.dtype != torch.float32:
            raise InvalidArgumentError(f"{name} must be torch.float32; got {tensor.dtype}")
    for name, tensor in (("o_states", o_states), ("lse_states", lse_states), ("out", out), ("lse_out", lse_out)):
        check_contiguous_last(name, tensor)
    os_ = _layout.strides_for_etap(o_states.shape[:2], o_states.stride()[:2], dim)
    ls = _layout.strides_for_etap(lse_states.shape[:1], lse_states.stride()[:1], rows)
    out_row_stride = _layout.strides_for_etap(out.shape[:1], out.stride()[:1], dim)[0]
    with _OnDevice(device):
        _C.merge_states(num_states, rows, dim, o_states.data_ptr(), os_[0], os_[1], lse_states.data_ptr(), ls[0],
                        int(lse_base), out.data_ptr(), dtype_code("out", out), out_row_stride,
                        lse_out.data_ptr(), stream_handle(device))


@torch.library.custom_op("etap::merge_states", mutates_args=("out", "lse_out"))
def merge_op(o_states: torch.Tensor, lse_states: torch.Tensor, out: torch.Tensor, lse_out: torch.Tensor,
             lse_base: int) -> None:
    merge_impl(o_states, lse_states, out, lse_out, lse_base)


@merge_op.register_fake
def _merge_fake(o_states, lse_states, out, lse_out, lse_base) -> None:
    return None


# ------------------------------------------------------------------------------------------- decode (varlen)

def _decode_varlen_layout(q, kv_cache, block_table, seqlens, cu_seqlens_q, max_seqlen_q, plan, workspace, out,
                          lse):
    """_decode_layout for packed variable-length queries: q [total_q, h_q, d_qk], out [total_q, h_q, d_v],
    lse [h_q, total_q], cu_seqlens_q [batch + 1]; the problem's s_q is max_seqlen_q."""
    device = query_device(q)
    _layout.check_rank("q", q.shape, 3, VARLEN_Q_LAYOUT)
    _layout.check_rank("k_cache", kv_cache.shape, 4, KV_LAYOUT)
    _layout.check_rank("block_table", block_table.shape, 2, BT_LAYOUT)
    _layout.check_rank("out", out.shape, 3, VARLEN_OUT_LAYOUT)
    _layout.check_rank("lse", lse.shape, 2, VARLEN_LSE_LAYOUT)
    _layout.check_rank("cu_seqlens_q", cu_seqlens_q.shape, 1, CU_LAYOUT)
    for name, tensor in (("k_cache", kv_cache), ("block_table", block_table), ("cache_seqlens", seqlens),
                         ("cu_seqlens_q", cu_seqlens_q), ("out", out), ("lse", lse)):
        check_device(name, tensor, device)
    check_buffer("plan", plan, device)
    check_buffer("workspace", workspace, device)
    check_int32("block_table", block_table, BT_LAYOUT)
    check_int32("cache_seqlens", seqlens, "[batch]")
    check_int32("cu_seqlens_q", cu_seqlens_q, CU_LAYOUT)
    if lse.dtype != torch.float32:
        raise InvalidArgumentError(f"lse must be torch.float32 {VARLEN_LSE_LAYOUT}; got {lse.dtype}")
    for name, tensor in (("q", q), ("k_cache", kv_cache), ("block_table", block_table), ("out", out)):
        check_contiguous_last(name, tensor)

    total_q, h_q, d_qk = q.shape
    num_pages, page_size, h_kv, kv_dim = kv_cache.shape
    d_v = out.shape[2]
    batch = block_table.shape[0]
    if kv_dim != d_qk:
        raise InvalidArgumentError(
            f"k_cache's last dimension ({kv_dim}) must equal q's head dim ({d_qk}): K is the whole cache row")
    _layout.check_shape("cache_seqlens", seqlens.shape, (batch,), "[batch]")
    _layout.check_shape("cu_seqlens_q", cu_seqlens_q.shape, (batch + 1,), CU_LAYOUT)
    for name, tensor in (("cache_seqlens", seqlens), ("cu_seqlens_q", cu_seqlens_q)):
        if tensor.stride(0) != 1 and tensor.shape[0] > 1:
            raise InvalidArgumentError(f"{name} must be contiguous")
    _layout.check_shape("out", out.shape[:2], (total_q, h_q), f"in its first two dimensions {VARLEN_OUT_LAYOUT}")
    _layout.check_shape("lse", lse.shape, (h_q, total_q), VARLEN_LSE_LAYOUT)

    max_pages = max_pages_per_seq(block_table, False, page_size)
    bt_stride = block_table.stride(0) if batch > 1 else max(block_table.stride(0), max_pages)
    problem = (batch, int(max_seqlen_q), h_q, h_kv, d_qk, d_v, page_size, num_pages, max_pages,
               dtype_code("q", q), dtype_code("k_cache", kv_cache), dtype_code("out", out), _C.KV_DENSE)
    qs = _layout.strides_for_etap(q.shape[:2], q.stride()[:2], d_qk)
    ks = _layout.strides_for_etap(kv_cache.shape[:3], kv_cache.stride()[:3], d_qk)
    os_ = _layout.strides_for_etap(out.shape[:2], out.stride()[:2], d_v)
    ls = _layout.strides_for_etap(lse.shape, lse.stride(), 1)
    return device, problem, qs, ks, os_, bt_stride, ls, total_q


def decode_varlen_impl(q: torch.Tensor, kv_cache: torch.Tensor, block_table: torch.Tensor, seqlens: torch.Tensor,
                       cu_seqlens_q: torch.Tensor, max_seqlen_q: int, plan: torch.Tensor, workspace: torch.Tensor,
                       out: torch.Tensor, lse: torch.Tensor, softmax_scale: float, causal: bool, lse_base: int,
                       num_sms: int, checked: bool) -> None:
    key = ("varlen", int(max_seqlen_q), cu_seqlens_q.shape, cu_seqlens_q.stride(), cu_seqlens_q.dtype,
           cu_seqlens_q.get_device(), _layout_key(q, kv_cache, block_table, seqlens, plan, workspace, out, lse,
                                                  False, _C.KV_DENSE))
    layout = _layouts.get(key)
    if layout is None:
        layout = _decode_varlen_layout(q, kv_cache, block_table, seqlens, cu_seqlens_q, max_seqlen_q, plan,
                                       workspace, out, lse)
        if len(_layouts) >= _MAX_LAYOUTS:
            _layouts.clear()
        _layouts[key] = layout
    device, problem, qs, ks, os_, bt_stride, ls, total_q = layout
    with _OnDevice(device):
        _C.decode_varlen(problem, q.data_ptr(), qs[0], qs[1], kv_cache.data_ptr(), ks[0], ks[1], ks[2],
                         block_table.data_ptr(), bt_stride, seqlens.data_ptr(), cu_seqlens_q.data_ptr(), total_q,
                         out.data_ptr(), os_[0], os_[1], lse.data_ptr(), ls[0], ls[1], float(softmax_scale),
                         bool(causal), int(lse_base), plan.data_ptr(), plan.nbytes, workspace.data_ptr(),
                         workspace.nbytes, stream_handle(device), int(num_sms), bool(checked))


def new_varlen_outputs(q: torch.Tensor, d_v: int) -> Tuple[torch.Tensor, torch.Tensor]:
    total_q, h_q, _ = q.shape
    return q.new_empty((total_q, h_q, d_v)), q.new_empty((h_q, total_q), dtype=torch.float32)


def new_varlen_workspace(q: torch.Tensor, kv_cache: torch.Tensor, batch: int, max_seqlen_q: int, d_v: int,
                         num_sms: int, traced: bool = False):
    """The workspace of a varlen call: partial results of max_seqlen_q · h_q rows per split."""
    _layout.check_rank("q", q.shape, 3, VARLEN_Q_LAYOUT)
    _layout.check_rank("k_cache", kv_cache.shape, 4, KV_LAYOUT)
    problem = _layout.sizing_problem(batch, int(max_seqlen_q), q.shape[1], h_kv=kv_cache.shape[2],
                                     d_qk=q.shape[2], d_v=d_v, page_size=kv_cache.shape[1],
                                     num_pages=kv_cache.shape[0], q_dtype=_DTYPE_CODES.get(q.dtype, _C.DTYPE_BF16),
                                     kv_dtype=_DTYPE_CODES.get(kv_cache.dtype, _C.DTYPE_BF16))
    sizes = _traced_buffer_sizes if traced else buffer_sizes
    return torch.empty(sizes(problem, num_sms)[1], dtype=torch.uint8, device=q.device)


@torch.library.custom_op("etap::decode_varlen_out", mutates_args=("workspace", "out", "lse"))
def decode_varlen_out_op(q: torch.Tensor, kv_cache: torch.Tensor, block_table: torch.Tensor, seqlens: torch.Tensor,
                         cu_seqlens_q: torch.Tensor, max_seqlen_q: int, plan: torch.Tensor, workspace: torch.Tensor,
                         out: torch.Tensor, lse: torch.Tensor, softmax_scale: float, causal: bool, lse_base: int,
                         num_sms: int, checked: bool) -> None:
    decode_varlen_impl(q, kv_cache, block_table, seqlens, cu_seqlens_q, max_seqlen_q, plan, workspace, out, lse,
                       softmax_scale, causal, lse_base, num_sms, checked)


@decode_varlen_out_op.register_fake
def _decode_varlen_out_fake(q, kv_cache, block_table, seqlens, cu_seqlens_q, max_seqlen_q, plan, workspace, out,
                            lse, softmax_scale, causal, lse_base, num_sms, checked) -> None:
    return None
