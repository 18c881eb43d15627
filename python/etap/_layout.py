"""Shape and stride arithmetic of the torch layer, on plain ints (no PyTorch needed, unit-tested anywhere)."""

from __future__ import annotations

from typing import Sequence, Tuple

from etap import _C

# Problem tuple field order (etap_problem in <etap/etap.h>).
PROBLEM_FIELDS = (
    "batch", "s_q", "h_q", "h_kv", "d_qk", "d_v", "page_size", "num_pages", "max_pages_per_seq",
    "q_dtype", "kv_dtype", "out_dtype", "kv_format",
)
INT32_MAX = 2**31 - 1

# FlashMLA's get_mla_metadata returns [num_sm_parts, 8] metadata whose shape does not depend on the batch;
# SGLang's CUDA-graph path allocates it once at the largest batch and copy_()s each step's metadata into it.
# etap's plan grows with the batch, so the legacy metadata is sized for at least this many requests: its
# shape stays the same for every batch up to it.
LEGACY_METADATA_MIN_BATCH = 1024

LSE_BASES = {"e": _C.LSE_NATURAL, "natural": _C.LSE_NATURAL, "2": _C.LSE_BASE2, "base2": _C.LSE_BASE2}


def problem(batch: int, s_q: int, h_q: int, *, h_kv: int = 1, d_qk: int = 576, d_v: int = 512,
            page_size: int = 64, num_pages: int = 0, max_pages_per_seq: int = 0,
            q_dtype: int = _C.DTYPE_BF16, kv_dtype: int | None = None,
            out_dtype: int | None = None, kv_format: int = _C.KV_DENSE) -> Tuple[int, ...]:
    """The problem tuple the binding takes (kv and out dtypes default to q's; an FP8 kv_format stores e4m3)."""
    if kv_dtype is None:
        kv_dtype = q_dtype if kv_format == _C.KV_DENSE else _C.DTYPE_FP8_E4M3
    out_dtype = q_dtype if out_dtype is None else out_dtype
    return (batch, s_q, h_q, h_kv, d_qk, d_v, page_size, num_pages, max_pages_per_seq, q_dtype, kv_dtype,
            out_dtype, kv_format)


DTYPE_NAMES = {"bf16": _C.DTYPE_BF16, "bfloat16": _C.DTYPE_BF16, "fp16": _C.DTYPE_FP16, "float16": _C.DTYPE_FP16,
               "half": _C.DTYPE_FP16, "fp32": _C.DTYPE_FP32, "float32": _C.DTYPE_FP32, "float": _C.DTYPE_FP32,
               "fp8_e4m3": _C.DTYPE_FP8_E4M3, "float8_e4m3fn": _C.DTYPE_FP8_E4M3}


def dtype_code_of(dtype) -> int:
    """A dtype given as a torch.dtype or a name ('bf16', 'fp16', ...) to the library's code."""
    name = str(dtype).lower()
    name = name[len("torch."):] if name.startswith("torch.") else name
    if name not in DTYPE_NAMES:
        raise _C.InvalidArgumentError(f"dtype {dtype!r} is not one etap knows; use bf16 or fp16")
    return DTYPE_NAMES[name]


# The d_qk built with each d_v (576/512 MLA, 320/256); a d_v of neither is paired with itself, which the
# library refuses with its list of supported head dims.
D_QK_OF_D_V = {512: 576, 256: 320}


def sizing_problem(batch: int, s_q: int, h_q: int, *, h_kv: int = 1, d_qk: int | None = None, d_v: int = 512,
                   page_size: int = 64, q_dtype: int = _C.DTYPE_BF16, kv_dtype: int | None = None,
                   num_pages: int = 1, kv_format: int = _C.KV_DENSE) -> Tuple[int, ...]:
    """A problem for buffer sizes, which depend on batch, s_q, h_q, h_kv and d_v only (num_pages and
    max_pages_per_seq only need to pass validation; d_qk defaults to the one built with d_v)."""
    if d_qk is None:
        d_qk = D_QK_OF_D_V.get(d_v, d_v)
    return problem(batch, s_q, h_q, h_kv=h_kv, d_qk=d_qk, d_v=d_v, page_size=page_size, num_pages=num_pages,
                   max_pages_per_seq=1, q_dtype=q_dtype, kv_dtype=kv_dtype, kv_format=kv_format)


# FP8 KV caches (issue 11). The DeepSeek-V3.2 token: 512 e4m3 latent values, 4 fp32 scales (one per 128
# channels), 64 bf16 RoPE values (<etap/etap.hpp>, Fp8DeepSeekV32Token).
FP8_DEEPSEEK_V32_TOKEN_BYTES = 656
FP8_LAYOUTS = ("an FP8 cache (is_fp8_kvcache=True) is either d_qk e4m3 bytes per token with one fp32 scale "
               f"(descale_k, vLLM's k_scale) or DeepSeek-V3.2's {FP8_DEEPSEEK_V32_TOKEN_BYTES}-byte token "
               "(scales inside each token, no descale_k)")


def kv_format_of(fp8: bool, is_fp8_kvcache: bool, kv_dim: int, d_qk: int, has_descale_k: bool) -> int:
    """The library's kv_format of a FlashMLA/vLLM-style call, from what the tensors say: `fp8` whether the
    cache holds bytes (uint8 or float8_e4m3fn), its last dimension `kv_dim`, q's head dim `d_qk`, and whether
    a descale_k was passed. Raises InvalidArgumentError for combinations that name no format."""
    if not is_fp8_kvcache:
        if fp8:
            raise _C.InvalidArgumentError(
                "k_cache holds bytes (uint8/float8_e4m3fn), an FP8 cache; pass is_fp8_kvcache=True (and "
                "descale_k for a per-tensor-scaled cache) or give a bf16/fp16 cache")
        if has_descale_k:
            raise _C.InvalidArgumentError(
                "descale_k is given but is_fp8_kvcache is False: a bf16/fp16 cache is not quantised; pass "
                "is_fp8_kvcache=True with an FP8 cache, or drop descale_k")
        return _C.KV_DENSE
    if not fp8:
        raise _C.InvalidArgumentError(
            "is_fp8_kvcache=True needs a k_cache of torch.uint8 or torch.float8_e4m3fn bytes; " + FP8_LAYOUTS)
    if kv_dim == FP8_DEEPSEEK_V32_TOKEN_BYTES:
        if has_descale_k:
            raise _C.InvalidArgumentError(
                f"descale_k must be None for a {FP8_DEEPSEEK_V32_TOKEN_BYTES}-byte (DeepSeek-V3.2) FP8 cache: its "
                "scales are inside each token")
        return _C.KV_FP8_DEEPSEEK_V32
    if kv_dim == d_qk:
        if not has_descale_k:
            raise _C.InvalidArgumentError(
                f"descale_k is None: an FP8 cache of {d_qk} e4m3 bytes per token needs its fp32 scale (vLLM's "
                "k_scale), a CUDA float32 tensor of one element: dequantised value = e4m3 value · descale_k")
        return _C.KV_FP8_PER_TENSOR
    raise _C.InvalidArgumentError(
        f"k_cache's last dimension is {kv_dim}, neither q's head dim ({d_qk}) nor "
        f"{FP8_DEEPSEEK_V32_TOKEN_BYTES}; " + FP8_LAYOUTS)


def lse_base_code(lse_base) -> int:
    """'e' (natural, FlashMLA's) or '2' (FlashInfer's) to the library's code; 2 and 'base2' also work."""
    key = str(lse_base).lower()
    if key not in LSE_BASES:
        raise _C.InvalidArgumentError(
            f"lse_base must be 'e' (natural log, FlashMLA's convention) or '2' (log2, FlashInfer's); got {lse_base!r}")
    return LSE_BASES[key]


def strides_for_etap(shape: Sequence[int], strides: Sequence[int], inner_extent: int) -> Tuple[int, ...]:
    """The strides of `shape`'s dimensions, with those of size-1 dimensions replaced by a dense value.

    A size-1 dimension is never stepped over, so its stride is arbitrary (PyTorch keeps whatever a view
    produced, e.g. 1 after some unsqueezes); etap checks every stride it is given, so a size-1 dimension gets
    the span of the dimensions inside it (`inner_extent` elements for the innermost one).
    """
    result = list(strides)
    span = inner_extent
    for i in range(len(shape) - 1, -1, -1):
        if shape[i] == 1:
            result[i] = span
        elif shape[i] > 1:
            span = max(span, result[i] * (shape[i] - 1) + span)
    return tuple(result)


def block_table_capacity(shape: Sequence[int], row_stride: int, storage_elements: int,
                         storage_offset: int, page_size: int = 64) -> int:
    """Page ids per request that FlashMLA could read from a block-table view: its addressable row width.

    FlashMLA never bounds a request's pages by block_table.shape[1]: it reads the row up to
    ceil(seqlen / page_size) entries. SGLang relies on it: its CUDA graphs capture a block-table view
    [:bs, :max_pages_at_capture] of a wider buffer and replay with longer sequences. etap clamps each
    request to max_pages_per_seq, so the FlashMLA-compatible calls pass the width the view's memory really
    has: the row stride (the next row starts there), and for the last row what is left of the storage.
    """
    batch, columns = shape
    if batch <= 0 or columns <= 0:
        return columns
    last_row_room = storage_elements - storage_offset - (batch - 1) * row_stride
    width = last_row_room if batch == 1 else min(row_stride, last_row_room)
    width = max(width, columns)
    return min(width, largest_max_pages_per_seq(batch, page_size))


def largest_max_pages_per_seq(batch: int, page_size: int = 64) -> int:
    """The largest max_pages_per_seq etap accepts for `batch` requests of `page_size`-token pages (its
    schedule's 32-bit cost line counts 64-token blocks)."""
    blocks = (2**31 - 1) // max(batch, 1) - 64
    return min(max(blocks * 64 // max(page_size, 1), 1), 2**31 - 1)


def legacy_metadata_batch(batch: int) -> int:
    """The batch the legacy (SGLang-shaped) metadata buffer is sized for."""
    return max(batch, LEGACY_METADATA_MIN_BATCH)


def check_rank(name: str, shape: Sequence[int], rank: int, layout: str) -> None:
    if len(shape) != rank:
        raise _C.InvalidArgumentError(f"{name} must be {rank}-D {layout}; got shape {list(shape)}")


def check_shape(name: str, shape: Sequence[int], expected: Sequence[int], layout: str) -> None:
    if tuple(shape) != tuple(expected):
        raise _C.InvalidArgumentError(f"{name} must have shape {list(expected)} {layout}; got {list(shape)}")
