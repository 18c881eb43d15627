"""Poisoned MLA decode inputs, a batched fp32 PyTorch reference and FlashMLA's tolerance check.

Inputs follow FlashMLA's dense-decode test: q and the cache ~ N(0, 1/100) clamped to [-1, 1]; fixed or
variable lengths (normal(s_k, s_k/2), at least `min_len`); optional zero-length requests; every request owns
ceil(max_len / 256) · 4 pages in random order; cache slots past each length hold NaN and unused block-table
entries FlashMLA's padding id, which etap must never read.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Optional, Tuple

import torch

PAGE = 64
D_QK = 576
D_V = 512
PADDING_PAGE_ID = 2147480000
# FlashMLA's tolerances (tests/test_flash_mla_dense_decoding.py).
OUT_ABS, OUT_REL, OUT_COS = 8e-4, 2.01 / 128, 5e-6
LSE_ABS, LSE_REL = 1e-6, 8.01 / 65536


@dataclasses.dataclass
class PagedKV:
    """A poisoned paged cache and the block table / lengths that address it."""

    seqlens: torch.Tensor  # [b] int32, device
    block_table: torch.Tensor  # [b, max_pages] int32, unused entries = PADDING_PAGE_ID
    k_cache: torch.Tensor  # [num_pages, 64, 1, 576], maybe a strided view
    dense: Optional[torch.Tensor] = None  # [b, max_len, 576] fp32, zero past each length (reference)


def make_paged_kv(b: int, s_k: int, *, varlen: bool, zero_lengths: bool = False, min_len: int = 1,
                  dtype=torch.bfloat16, strided: bool = False, seed: int = 0, device="cuda") -> PagedKV:
    rng = random.Random(seed)
    torch.manual_seed(seed)
    lengths = [s_k] * b
    if varlen:
        lengths = [max(int(rng.normalvariate(s_k, s_k / 2)), min_len) for _ in range(b)]
    if zero_lengths:
        lengths = [0 if rng.random() < 0.5 else n for n in lengths]
    max_len = max(lengths)
    pages_per_request = max(math.ceil(max_len / 256) * 256 // PAGE, 1)
    num_pages = b * pages_per_request
    block_table = torch.randperm(num_pages, device=device, dtype=torch.int64).to(torch.int32)
    block_table = block_table.view(b, pages_per_request)
    if strided:  # k_cache = kv.unsqueeze(-2) of a wider cache: token stride 640, the extra columns NaN
        storage = torch.full((num_pages, PAGE, 640), float("nan"), dtype=dtype, device=device)
        k_cache = storage[..., :D_QK].unsqueeze(-2)
    else:
        k_cache = torch.empty((num_pages, PAGE, 1, D_QK), dtype=dtype, device=device)
    k_cache.copy_((torch.randn(num_pages, PAGE, 1, D_QK, device=device) / 10).clamp_(-1, 1))
    poison(k_cache, block_table, lengths)
    seqlens = torch.tensor(lengths, dtype=torch.int32, device=device)
    return PagedKV(seqlens, block_table, k_cache)


def poison(k_cache: torch.Tensor, block_table: torch.Tensor, lengths) -> None:
    """NaN in every cache slot past each request's length; FlashMLA's padding id in its unused table entries."""
    for i, n in enumerate(lengths):
        used = math.ceil(n / PAGE)
        k_cache[block_table[i, used:].long()] = float("nan")
        if n % PAGE:
            k_cache[block_table[i, used - 1].long(), n % PAGE:] = float("nan")
        block_table[i, used:] = PADDING_PAGE_ID


def dense_kv(kv: PagedKV) -> torch.Tensor:
    """[b, max_len, 576] fp32 rows of each request, zero past its length (NaN poison removed)."""
    if kv.dense is None:
        lengths = kv.seqlens.long()
        max_len = max(int(lengths.max()), 1)
        pages = math.ceil(max_len / PAGE)
        ids = kv.block_table[:, :pages].long().clamp(0, kv.k_cache.shape[0] - 1)
        rows = kv.k_cache[ids].reshape(ids.shape[0], pages * PAGE, D_QK)[:, :max_len].float()
        valid = torch.arange(max_len, device=rows.device)[None, :] < lengths[:, None]
        kv.dense = rows.masked_fill(~valid[..., None], 0.0)
    return kv.dense


def make_q(b: int, s_q: int, h_q: int, *, dtype=torch.bfloat16, seed: int = 1, device="cuda") -> torch.Tensor:
    generator = torch.Generator(device=device).manual_seed(seed)
    return (torch.randn(b, s_q, h_q, D_QK, generator=generator, device=device) / 10).clamp_(-1, 1).to(dtype)


def reference(q: torch.Tensor, kv: PagedKV, softmax_scale: float, causal: bool,
              batch_chunk: int = 32) -> Tuple[torch.Tensor, torch.Tensor]:
    """fp32 attention: out [b, s_q, h_q, 512] in q's dtype and lse [b, h_q, s_q] (natural log; +inf and
    out = 0 for a query row that sees no key)."""
    b, s_q, h_q, _ = q.shape
    keys = dense_kv(kv)
    lengths = kv.seqlens.long()
    out = torch.empty(b, s_q * h_q, D_V, dtype=torch.float32, device=q.device)
    lse = torch.empty(b, s_q * h_q, dtype=torch.float32, device=q.device)
    token = torch.arange(keys.shape[1], device=q.device)
    row_token = torch.arange(s_q, device=q.device).repeat_interleave(h_q)  # row r = (s, h): s = r // h_q
    for begin in range(0, b, batch_chunk):
        end = min(begin + batch_chunk, b)
        k = keys[begin:end]
        n = lengths[begin:end]
        scores = q[begin:end].float().reshape(end - begin, s_q * h_q, D_QK) @ k.transpose(1, 2) * softmax_scale
        visible = token[None, None, :] < n[:, None, None]
        if causal:
            visible = visible & (token[None, None, :] <= (n[:, None] - s_q + row_token[None, :])[..., None])
        scores = scores.masked_fill(~visible, float("-inf"))
        row_lse = torch.logsumexp(scores, dim=-1)
        empty = torch.isneginf(row_lse)
        p = torch.exp(scores - torch.where(empty, 0.0, row_lse)[..., None])
        out[begin:end] = (p @ k[..., :D_V]).masked_fill(empty[..., None], 0.0)
        lse[begin:end] = row_lse.masked_fill(empty, float("inf"))
    out = out.view(b, s_q, h_q, D_V).to(q.dtype)
    lse = lse.view(b, s_q, h_q).transpose(1, 2).contiguous()
    return out, lse


def close(name: str, ans: torch.Tensor, ref: torch.Tensor, abs_tol: float, rel_tol: float,
          cos_diff_tol: Optional[float] = None) -> Optional[str]:
    """None when `ans` is within FlashMLA's criteria of `ref`, else what is wrong: the same ±inf/NaN
    positions, every element within abs_tol or rel_tol, and (optionally) the cosine difference."""
    assert ans.shape == ref.shape and ans.dtype == ref.dtype, (name, ans.shape, ref.shape, ans.dtype, ref.dtype)
    a = ans.float().clone()
    r = ref.float().clone()
    for label, mask_of in (("+inf", lambda t: t == float("inf")), ("-inf", lambda t: t == float("-inf")),
                           ("nan", torch.isnan)):
        ma, mr = mask_of(a), mask_of(r)
        if not torch.equal(ma, mr):
            return f"{name}: {int(ma.sum())} {label} in the answer, {int(mr.sum())} in the reference"
        a[ma] = 0.0
        r[mr] = 0.0
    err = (a - r).abs()
    rel = err / (r.abs() + 1e-6)
    bad = (err >= abs_tol) & (rel >= rel_tol)
    if bad.any():
        worst = int(torch.argmax(torch.where(bad, err, 0.0)))
        return (f"{name}: {int(bad.sum())} of {bad.numel()} elements off (worst {a.flatten()[worst].item():.6g} "
                f"vs {r.flatten()[worst].item():.6g})")
    if cos_diff_tol is not None:
        a64, r64 = a.double(), r.double()
        if float((r64 * r64).sum()) >= 1e-12:
            cos_diff = 1 - 2 * float((a64 * r64).sum()) / float((a64 * a64 + r64 * r64).sum())
            if abs(cos_diff) > cos_diff_tol:
                return f"{name}: cosine difference {cos_diff:.3g} > {cos_diff_tol}"
    return None


def check_out_lse(out, lse, ref_out, ref_lse) -> None:
    problems = [p for p in (close("out", out, ref_out, OUT_ABS, OUT_REL, OUT_COS),
                            close("lse", lse, ref_lse, LSE_ABS, LSE_REL)) if p]
    assert not problems, "; ".join(problems)
