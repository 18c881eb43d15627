"""FlashMLA's older Python interface, served by etap (SGLang's ``sgl_kernel.flash_mla``, the ETAP seed code):
``from etap.flash_mla_legacy import get_mla_metadata, flash_mla_with_kvcache``.

``get_mla_metadata(cache_seqlens, num_heads_per_head_k, num_heads_k)`` computes etap's schedule on the GPU
from the device seqlens (no host synchronisation) and returns ``(tile_scheduler_metadata, num_splits)``:

- ``tile_scheduler_metadata``: etap's plan, an opaque int32 tensor of shape
  ``[etap.plan_bytes(max(b, 1024), ...) // 4]``. FlashMLA's is ``[num_sm_parts, 8]``; both keep their shape
  for every batch size (up to 1024 here), which SGLang's CUDA-graph path relies on: it allocates the
  metadata once at the largest batch and ``copy_()``s each step's metadata into it.
- ``num_splits``: int32 ``[b + 1]`` zeros, as FlashMLA's shape; etap keeps nothing in it but checks its
  length against the batch of the call, as FlashMLA does.

The plan is computed without a block table, each request with ceil(seqlen / 64) pages; that is exact for
every seqlen that fits the block table given later (a longer one is the caller's error, as with FlashMLA).
It is planned as one query token of s_q·h_q heads, all the metadata call knows; a call whose s_q tokens of
h_q heads split into more 64-row tiles (h_q / h_kv = 42 with s_q = 4, say: 4 tiles, not 3) plans for its
own shape from its cache_seqlens instead, one small kernel more per call.
"""

from __future__ import annotations

from typing import Tuple

import torch

from etap import _layout, _ops
from etap.flash_mla import flash_mla_with_kvcache  # noqa: F401  (one function serves both forms)

__all__ = ["get_mla_metadata", "flash_mla_with_kvcache"]


def get_mla_metadata(cache_seqlens: torch.Tensor, num_heads_per_head_k: int,
                     num_heads_k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(tile_scheduler_metadata, num_splits) for a decode step with these device seqlens [b] (int32) and
    num_heads_per_head_k = s_q * h_q // h_kv query rows per KV head. Asynchronous on the current stream."""
    _layout.check_rank("cache_seqlens", cache_seqlens.shape, 1, "[batch]")
    batch = cache_seqlens.shape[0]
    rows, h_kv = int(num_heads_per_head_k), int(num_heads_k)
    sized_for = _layout.sizing_problem(_layout.legacy_metadata_batch(batch), 1, rows * h_kv, h_kv=h_kv)
    if torch.compiler.is_compiling():
        plan_bytes = _ops._traced_buffer_sizes(sized_for, 0)[0]
    else:
        plan_bytes = _ops.buffer_sizes(sized_for, 0)[0]
    plan = torch.empty(plan_bytes // 4, dtype=torch.int32, device=cache_seqlens.device)
    if torch.compiler.is_compiling():
        torch.ops.etap.plan(cache_seqlens, plan, None, 1, rows * h_kv, h_kv, 64, True, 0)
    else:
        _ops.plan_impl(cache_seqlens, plan, None, 1, rows * h_kv, h_kv, 64, True, 0)
    num_splits = torch.zeros(batch + 1, dtype=torch.int32, device=cache_seqlens.device)
    return plan, num_splits

