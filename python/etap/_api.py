"""etap's native PyTorch API: plan, decode, merge_states and their buffers."""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from etap import _layout, _ops


def _device(device) -> torch.device:
    device = torch.device("cuda", torch.cuda.current_device()) if device is None else torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _sizes(problem, num_sms: int):
    sizes = _ops._traced_buffer_sizes if torch.compiler.is_compiling() else _ops.buffer_sizes
    return sizes(problem, num_sms)


def empty_plan(batch: int, s_q: int, h_q: int, *, h_kv: int = 1, page_size: int = 64, device=None,
               num_sms: int = 0) -> torch.Tensor:
    """An uninitialised plan buffer (int32, opaque) for `plan` and `decode` of this problem shape.

    Its size depends on batch, s_q, h_q, h_kv and the SM count only (not on page_size): allocate it once per
    batch size (CUDA graphs: at a fixed address) and refill it with `plan` every step.
    """
    problem = _layout.sizing_problem(batch, s_q, h_q, h_kv=h_kv, page_size=page_size)
    return torch.empty(_sizes(problem, num_sms)[0] // 4, dtype=torch.int32, device=_device(device))


def empty_workspace(batch: int, s_q: int, h_q: int, *, h_kv: int = 1, d_v: int = 512, page_size: int = 64,
                    device=None, num_sms: int = 0) -> torch.Tensor:
    """An uninitialised decode workspace (uint8, opaque): split-KV partial results of s_q·h_q rows of d_v
    values. Its size does not depend on the KV length nor the page size; calls that run one after the other
    on one stream can share it."""
    problem = _layout.sizing_problem(batch, s_q, h_q, h_kv=h_kv, d_v=d_v, page_size=page_size)
    return torch.empty(_sizes(problem, num_sms)[1], dtype=torch.uint8, device=_device(device))


def plan(cache_seqlens: torch.Tensor, s_q: int, h_q: int, *, h_kv: int = 1, page_size: int = 64,
         block_table: Optional[torch.Tensor] = None, out: Optional[torch.Tensor] = None,
         num_sms: int = 0) -> torch.Tensor:
    """Computes the split-KV schedule on the GPU from device `cache_seqlens` [batch] (int32) into `out`
    (an `empty_plan` buffer; allocated when None) and returns it. Asynchronous on the current stream; CUDA-
    graph safe (capture it with decode: replays re-plan from the seqlens then in memory).

    Without `block_table` every request is planned with ceil(seqlen / page_size) pages; with it, clamped to
    block_table.shape[1] as decode does. Both give the same plan for seqlens that fit the block table.
    """
    if out is None:
        _layout.check_rank("cache_seqlens", cache_seqlens.shape, 1, "[batch]")
        out = empty_plan(cache_seqlens.shape[0], s_q, h_q, h_kv=h_kv, page_size=page_size,
                         device=cache_seqlens.device, num_sms=num_sms)
    if torch.compiler.is_compiling():
        torch.ops.etap.plan(cache_seqlens, out, block_table, s_q, h_q, h_kv, page_size, False, num_sms)
    else:
        _ops.plan_impl(cache_seqlens, out, block_table, s_q, h_q, h_kv, page_size, False, num_sms)
    return out


def decode(q: torch.Tensor, k_cache: torch.Tensor, block_table: torch.Tensor, cache_seqlens: torch.Tensor,
           plan: torch.Tensor, *, softmax_scale: float, causal: bool = False, lse_base="e", d_v: int = 512,
           out: Optional[torch.Tensor] = None, lse: Optional[torch.Tensor] = None,
           workspace: Optional[torch.Tensor] = None, num_sms: int = 0, checked: bool = False,
           cu_seqlens_q: Optional[torch.Tensor] = None,
           max_seqlen_q: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """MLA decode attention over a paged KV cache; returns (out, lse).

    q [batch, s_q, h_q, d_qk], k_cache [num_pages, page_size, h_kv, d_qk] (any strides, last dimension
    contiguous; V is the first d_v columns of each row; query head h reads KV head h // (h_q / h_kv)),
    block_table [batch, max_pages] int32, cache_seqlens [batch] int32, plan from `plan(cache_seqlens, ...)`
    this step with the same s_q, h_q, h_kv and page_size. Head dims d_qk/d_v: 576/512 (MLA), 512/512 or
    320/256; any page_size ≥ 1; s_q·h_q ≤ 4096 query rows. out [batch, s_q, h_q, d_v] in q's dtype and lse
    [batch, h_q, s_q] float32 in base `lse_base` ('e': natural, FlashMLA's; '2': log2, FlashInfer's) are
    written into `out`/`lse` when given; `workspace` from `empty_workspace`. With all three given nothing is
    allocated. Empty requests give out = 0 and lse = +inf. `checked` verifies page ids and seqlens on the
    device first (synchronises; not for CUDA graphs).

    Variable query lengths (speculative verification, FlashAttention-3's varlen form): pass `cu_seqlens_q`
    [batch + 1] int32 (device) and `max_seqlen_q` (a host int bounding every request's query tokens). q is
    then packed [total_q, h_q, d_qk], request i's tokens [cu_seqlens_q[i], cu_seqlens_q[i + 1]); out is
    [total_q, h_q, d_v] and lse [h_q, total_q]. Causal masking is bottom-right aligned per request; packed
    tokens no request owns are not written. Plan with `plan(cache_seqlens, max_seqlen_q, h_q, ...)` and size
    the workspace with `empty_workspace(batch, max_seqlen_q, h_q, ...)`. Device-side contract (checked mode
    verifies it): cu_seqlens_q[0] = 0, non-decreasing, each length ≤ max_seqlen_q, last ≤ total_q.
    """
    base = _layout.lse_base_code(lse_base)
    if cu_seqlens_q is not None or max_seqlen_q is not None:
        return _decode_varlen(q, k_cache, block_table, cache_seqlens, cu_seqlens_q, max_seqlen_q, plan,
                              softmax_scale, causal, base, d_v, out, lse, workspace, num_sms, checked)
    _layout.check_rank("q", q.shape, 4, _ops.Q_LAYOUT)
    if out is not None:
        _layout.check_rank("out", out.shape, 4, _ops.OUT_LAYOUT)
        d_v = out.shape[3]
    compiling = torch.compiler.is_compiling()
    if compiling and out is None and lse is None and workspace is None:
        return torch.ops.etap.decode(q, k_cache, block_table, cache_seqlens, plan, d_v, float(softmax_scale),
                                     bool(causal), base, False, num_sms, bool(checked))
    if out is None or lse is None:
        new_out, new_lse = _ops.new_outputs(q, d_v)
        out = new_out if out is None else out
        lse = new_lse if lse is None else lse
    if workspace is None:
        workspace = _ops.new_workspace(q, k_cache, d_v, num_sms, traced=compiling)
    call = torch.ops.etap.decode_out if compiling else _ops.decode_impl
    call(q, k_cache, block_table, cache_seqlens, plan, workspace, out, lse, float(softmax_scale), bool(causal),
         base, False, num_sms, bool(checked))
    return out, lse


def _decode_varlen(q, k_cache, block_table, cache_seqlens, cu_seqlens_q, max_seqlen_q, plan, softmax_scale, causal,
                   base, d_v, out, lse, workspace, num_sms, checked):
    if cu_seqlens_q is None or max_seqlen_q is None:
        raise _ops.InvalidArgumentError(
            "variable query lengths need both cu_seqlens_q (device int32 [batch + 1]) and max_seqlen_q (host int)")
    _layout.check_rank("q", q.shape, 3, _ops.VARLEN_Q_LAYOUT)
    if out is not None:
        _layout.check_rank("out", out.shape, 3, _ops.VARLEN_OUT_LAYOUT)
        d_v = out.shape[2]
    compiling = torch.compiler.is_compiling()
    if out is None or lse is None:
        new_out, new_lse = _ops.new_varlen_outputs(q, d_v)
        out = new_out if out is None else out
        lse = new_lse if lse is None else lse
    if workspace is None:
        _layout.check_rank("block_table", block_table.shape, 2, _ops.BT_LAYOUT)
        workspace = _ops.new_varlen_workspace(q, k_cache, block_table.shape[0], max_seqlen_q, d_v, num_sms,
                                              traced=compiling)
    call = torch.ops.etap.decode_varlen_out if compiling else _ops.decode_varlen_impl
    call(q, k_cache, block_table, cache_seqlens, cu_seqlens_q, int(max_seqlen_q), plan, workspace, out, lse,
         float(softmax_scale), bool(causal), base, int(num_sms), bool(checked))
    return out, lse


def merge_states(o_states: torch.Tensor, lse_states: torch.Tensor, *, lse_base="e",
                 out: Optional[torch.Tensor] = None, lse_out: Optional[torch.Tensor] = None,
                 out_dtype: torch.dtype = torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
    """LSE-weighted merge of partial attention states (context parallelism, cascade/prefix attention).

    o_states [num_states, rows, dim] float32, each state normalised; lse_states [num_states, rows] float32
    in base `lse_base` (±inf: an empty state, weight 0). Returns out [rows, dim] (`out_dtype`: float32,
    bfloat16 or float16) and lse_out [rows] in the same base; a row whose states are all empty gets out = 0
    and lse = +inf.
    """
    base = _layout.lse_base_code(lse_base)
    _layout.check_rank("o_states", o_states.shape, 3, "[num_states, rows, dim]")
    _, rows, dim = o_states.shape
    if out is None:
        out = torch.empty((rows, dim), dtype=out_dtype, device=o_states.device)
    if lse_out is None:
        lse_out = torch.empty((rows,), dtype=torch.float32, device=o_states.device)
    call = torch.ops.etap.merge_states if torch.compiler.is_compiling() else _ops.merge_impl
    call(o_states, lse_states, out, lse_out, base)
    return out, lse_out
