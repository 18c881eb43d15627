"""FlashMLA's dense-decode Python interface, served by etap: ``import etap.flash_mla as flash_mla``.

This is the interface of FlashMLA since 2026-01 (as vLLM's FlashMLA backend calls it):
``get_mla_metadata()`` returns an empty ``FlashMLASchedMeta``; the first ``flash_mla_with_kvcache`` call
with it computes the schedule (on the GPU, from the device ``cache_seqlens``) and later calls — the other
layers of the step — reuse it while the shapes and seqlens stay the same. Make a new one every step.

``flash_mla_with_kvcache`` also accepts FlashMLA's older form, the tensors that
``etap.flash_mla_legacy.get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv)`` returns.

Differences from FlashMLA (see the README): the metadata is etap's plan, not FlashMLA's tile-scheduler
layout; sparse attention (``indices``), ``attn_sink`` and the ``extra_*`` inputs raise ``UnsupportedError``;
FP8 KV caches (``is_fp8_kvcache=True``, with vLLM's ``descale_k`` for a per-tensor-scaled cache of d_qk bytes
per token, without it for DeepSeek-V3.2's 656-byte tokens) run etap's FP8 kernels, which dequantise into bf16/fp16
shared memory; inconsistent reuse of a sched_meta raises ``InvalidArgumentError`` (a ``ValueError``)
where FlashMLA asserts.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import torch

from etap import _C, _api, _layout, _ops

__all__ = ["FlashMLASchedMeta", "get_mla_metadata", "flash_mla_with_kvcache"]


@dataclasses.dataclass
class FlashMLASchedMeta:
    """Scheduling state shared by the layers of one decode step (FlashMLA's class of the same name)."""

    @dataclasses.dataclass
    class Config:
        b: int
        s_q: int
        h_q: int
        page_block_size: int
        h_k: int
        causal: bool
        is_fp8_kvcache: bool

    have_initialized: bool = False
    config: Optional[Config] = None
    # FlashMLA's own metadata fields: etap neither reads nor fills them (a caller that presets them, such as
    # vLLM's batch-invariant mode, gets an UnsupportedError instead of a silently different schedule).
    tile_scheduler_metadata: Optional[torch.Tensor] = None
    num_splits: Optional[torch.Tensor] = None
    # etap's state, filled by the first call: the plan (int32, opaque) and the split-KV workspace.
    plan: Optional[torch.Tensor] = None
    workspace: Optional[torch.Tensor] = None
    workspace_stream: int = 0


def get_mla_metadata(*args, **kwargs) -> Tuple[FlashMLASchedMeta, None]:
    """An empty FlashMLASchedMeta (arguments are accepted and ignored, as FlashMLA does) and None."""
    return FlashMLASchedMeta(), None


def _refuse_unsupported(indices, attn_sink, extra_k_cache, extra_indices_in_kvcache, topk_length,
                        extra_topk_length) -> None:
    if indices is not None or topk_length is not None:
        raise _C.UnsupportedError("sparse attention (indices, topk_length) is not supported by etap; "
                                  "etap serves FlashMLA's dense decode only")
    if attn_sink is not None:
        raise _C.UnsupportedError("attn_sink is not supported by etap yet")
    if extra_k_cache is not None or extra_indices_in_kvcache is not None or extra_topk_length is not None:
        raise _C.UnsupportedError("extra_k_cache / extra_indices_in_kvcache / extra_topk_length (sparse "
                                  "attention) are not supported by etap")


def flash_mla_with_kvcache(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    block_table: Optional[torch.Tensor],
    cache_seqlens: Optional[torch.Tensor],
    head_dim_v: int,
    tile_scheduler_metadata,
    num_splits: Optional[torch.Tensor] = None,
    softmax_scale: Optional[float] = None,
    causal: bool = False,
    is_fp8_kvcache: bool = False,
    indices: Optional[torch.Tensor] = None,
    attn_sink: Optional[torch.Tensor] = None,
    extra_k_cache: Optional[torch.Tensor] = None,
    extra_indices_in_kvcache: Optional[torch.Tensor] = None,
    topk_length: Optional[torch.Tensor] = None,
    extra_topk_length: Optional[torch.Tensor] = None,
    *,
    descale_q: Optional[torch.Tensor] = None,
    descale_k: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """MLA decode; returns (out [b, s_q, h_q, head_dim_v] in q's dtype, softmax_lse [b, h_q, s_q] float32, ln).

    q [b, s_q, h_q, d] with d 576 (or 512 without RoPE; 320 with head_dim_v 256), s_q·h_q ≤ 4096; k_cache
    [num_blocks, page_block_size, h_kv, d] (FlashMLA's page_block_size is 64, etap takes any; h_kv divides
    h_q; a view such as ``kv.unsqueeze(-2)`` is fine: strides come from the tensor); block_table
    [b, max_blocks] int32 (unused entries are never read);
    cache_seqlens [b] int32; tile_scheduler_metadata a FlashMLASchedMeta (num_splits None) or the legacy
    (tile_scheduler_metadata, num_splits) tensors. softmax_scale defaults to 1/sqrt(d); engines pass
    theirs. causal: query token i of a request of length n sees keys [0, n - s_q + i]. A request of length 0
    gives out = 0 and lse = +inf (FlashMLA's convention).

    FP8 KV cache (is_fp8_kvcache=True, k_cache uint8 or float8_e4m3fn): last dim d (576) with descale_k
    (vLLM's k_scale, float32 [1]) is the library's kFp8PerTensor; last dim 656 (DeepSeek-V3.2's token, no
    descale_k) is kFp8DeepSeekV32 (bf16 q only). descale_q (vLLM's q_scale, float32 [1], optional) scales the
    bf16/fp16 q in the logits. q stays bf16/fp16 (an e4m3 q is not accepted); out is q's dtype.
    """
    _refuse_unsupported(indices, attn_sink, extra_k_cache, extra_indices_in_kvcache, topk_length,
                        extra_topk_length)
    if block_table is None or cache_seqlens is None:
        raise _C.InvalidArgumentError("block_table and cache_seqlens are required for dense decode")
    _layout.check_rank("q", q.shape, 4, _ops.Q_LAYOUT)
    _layout.check_rank("k_cache", k_cache.shape, 4, _ops.KV_LAYOUT)
    kv_format = _layout.kv_format_of(_ops.is_fp8_cache(k_cache), bool(is_fp8_kvcache), k_cache.shape[-1],
                                     q.shape[-1], descale_k is not None)
    if softmax_scale is None:
        softmax_scale = q.shape[-1] ** (-0.5)
    if isinstance(tile_scheduler_metadata, FlashMLASchedMeta):
        if num_splits is not None:
            raise _C.InvalidArgumentError("num_splits must be None with a FlashMLASchedMeta (FlashMLA's newer "
                                          "interface); legacy metadata comes from etap.flash_mla_legacy")
        plan, workspace = _scheduled(tile_scheduler_metadata, q, k_cache, block_table, cache_seqlens,
                                     head_dim_v, causal, is_fp8_kvcache, kv_format)
    elif isinstance(tile_scheduler_metadata, torch.Tensor):
        plan, workspace = _legacy_plan(tile_scheduler_metadata, num_splits, q, k_cache, block_table, cache_seqlens)
    else:
        raise _C.InvalidArgumentError(
            "tile_scheduler_metadata must be the FlashMLASchedMeta from etap.flash_mla.get_mla_metadata() or the "
            f"tensor from etap.flash_mla_legacy.get_mla_metadata(...); got {type(tile_scheduler_metadata).__name__}")
    return _decode(q, k_cache, block_table, cache_seqlens, plan, workspace, head_dim_v, softmax_scale, causal,
                   kv_format, descale_k, descale_q)


def _decode(q, k_cache, block_table, cache_seqlens, plan, workspace, d_v, softmax_scale, causal, kv_format,
            descale_k, descale_q):
    if torch.compiler.is_compiling() and workspace is None:
        return torch.ops.etap.decode(q, k_cache, block_table, cache_seqlens, plan, d_v, float(softmax_scale),
                                     bool(causal), _C.LSE_NATURAL, True, 0, False, kv_format, descale_k, descale_q)
    out, lse = _ops.new_outputs(q, d_v)
    if workspace is None:
        workspace = _ops.new_workspace(q, k_cache, d_v, 0, kv_format=kv_format)
    call = torch.ops.etap.decode_out if torch.compiler.is_compiling() else _ops.decode_impl
    call(q, k_cache, block_table, cache_seqlens, plan, workspace, out, lse, float(softmax_scale), bool(causal),
         _C.LSE_NATURAL, True, 0, False, kv_format, descale_k, descale_q)
    return out, lse


def _scheduled(meta: FlashMLASchedMeta, q, k_cache, block_table, cache_seqlens, head_dim_v, causal,
               is_fp8_kvcache, kv_format):
    """The plan and workspace of a sched_meta: made (and the schedule computed) by its first call."""
    config = FlashMLASchedMeta.Config(q.shape[0], q.shape[1], q.shape[2], k_cache.shape[1], k_cache.shape[2],
                                      bool(causal), bool(is_fp8_kvcache))
    if not meta.have_initialized:
        if meta.tile_scheduler_metadata is not None or meta.num_splits is not None:
            raise _C.UnsupportedError(
                "this FlashMLASchedMeta carries FlashMLA-format tile_scheduler_metadata/num_splits (e.g. vLLM's "
                "batch-invariant mode); etap computes its own schedule and cannot use them")
        batch, s_q, h_q = config.b, config.s_q, config.h_q
        plan = _api.empty_plan(batch, s_q, h_q, h_kv=config.h_k, page_size=config.page_block_size,
                               device=q.device)
        if torch.compiler.is_compiling():
            torch.ops.etap.plan(cache_seqlens, plan, block_table, s_q, h_q, config.h_k, config.page_block_size,
                                True, 0)
        else:
            _ops.plan_impl(cache_seqlens, plan, block_table, s_q, h_q, config.h_k, config.page_block_size, True,
                           0)
        meta.plan = plan
        meta.workspace = _ops.new_workspace(q, k_cache, head_dim_v, 0, traced=torch.compiler.is_compiling(),
                                            kv_format=kv_format)
        if not torch.compiler.is_compiling():
            meta.workspace_stream = _ops.stream_handle(q.get_device())
        meta.config = config
        meta.have_initialized = True
        return meta.plan, meta.workspace
    if meta.config != config:
        differences = ", ".join(f"{field.name} {getattr(meta.config, field.name)} -> {getattr(config, field.name)}"
                                for field in dataclasses.fields(config)
                                if getattr(meta.config, field.name) != getattr(config, field.name))
        raise _C.InvalidArgumentError(
            f"this call does not match the one that initialised the sched_meta ({differences}); reuse a "
            "sched_meta only across calls with the same shapes and cache_seqlens, make a new one otherwise")
    workspace = meta.workspace
    if not torch.compiler.is_compiling() and _ops.stream_handle(q.get_device()) != meta.workspace_stream:
        workspace = None  # another stream may be using it: this call gets its own
    return meta.plan, workspace


def _legacy_plan(tile_scheduler_metadata: torch.Tensor, num_splits, q, k_cache, block_table, cache_seqlens):
    if not isinstance(num_splits, torch.Tensor):
        raise _C.InvalidArgumentError(
            "num_splits must be the tensor that etap.flash_mla_legacy.get_mla_metadata returned with "
            "tile_scheduler_metadata")
    batch, s_q, h_q = q.shape[:3]
    if num_splits.dim() != 1 or num_splits.shape[0] != batch + 1:
        raise _C.InvalidArgumentError(
            f"num_splits has shape {list(num_splits.shape)}, so the metadata is not for this batch of {batch} "
            f"(expected [{batch + 1}]); call get_mla_metadata with this step's cache_seqlens")
    page_size, h_kv = k_cache.shape[1], k_cache.shape[2]
    if h_kv < 1 or h_q % h_kv != 0 or _legacy_metadata_fits(batch, s_q, h_q, h_kv, q.get_device()):
        return tile_scheduler_metadata, None  # (the library reports an h_kv that does not divide h_q)
    plan = _api.empty_plan(batch, s_q, h_q, h_kv=h_kv, page_size=page_size, device=q.device)
    if torch.compiler.is_compiling():
        torch.ops.etap.plan(cache_seqlens, plan, block_table, s_q, h_q, h_kv, page_size, True, 0)
    else:
        _ops.plan_impl(cache_seqlens, plan, block_table, s_q, h_q, h_kv, page_size, True, 0)
    return plan, None


_legacy_fits: dict = {}


def _legacy_metadata_fits(batch: int, s_q: int, h_q: int, h_kv: int, device: int) -> bool:
    """Whether the older form's metadata schedules this call. get_mla_metadata knows only R = s_q·h_q/h_kv
    and h_kv, so it plans s_q = 1 token of R·h_kv heads. etap's plan depends on how the rows split into
    64-row tiles (its part count is the SM count over the tiles), and s_q tokens of h_q heads can need more
    tiles than one token of R·h_kv heads (h_q / h_kv = 42, s_q = 4: 4 tiles per KV head, not 3); such a
    call is planned afresh from its cache_seqlens. The plan's size tells the part counts apart."""
    if s_q == 1 or device < 0:  # (a CPU q is refused by the decode call that follows)
        return True
    planned = _layout.sizing_problem(batch, 1, s_q * h_q, h_kv=h_kv)
    called = _layout.sizing_problem(batch, s_q, h_q, h_kv=h_kv)
    if torch.compiler.is_compiling():
        return _ops._traced_buffer_sizes(planned, 0)[0] == _ops._traced_buffer_sizes(called, 0)[0]
    key = (called, device)
    fits = _legacy_fits.get(key)
    if fits is None:
        with _ops._OnDevice(device):
            fits = _ops.buffer_sizes(planned, 0)[0] == _ops.buffer_sizes(called, 0)[0]
        _legacy_fits[key] = fits
    return fits
