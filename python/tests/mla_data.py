"""Poisoned MLA decode inputs, a batched fp32 PyTorch reference and FlashMLA's tolerance check.

Inputs follow FlashMLA's dense-decode test: q and the cache ~ N(0, 1/100) clamped to [-1, 1]; fixed or
variable lengths (normal(s_k, s_k/2), at least `min_len`); optional zero-length requests; every request owns
ceil(ceil(max_len / 256) · 256 / page_size) pages in random order; cache slots past each length hold NaN and
unused block-table entries FlashMLA's padding id, which etap must never read. The cache is
[num_pages, page_size, h_kv, d_qk]; query head h reads KV head h // (h_q / h_kv) (FlashMLA's
repeat_interleave), and V is the first d_v columns of each cache row.
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
# The reference's fp32 scores and keys of one batch chunk stay below this many elements each (memory, not
# accuracy).
REFERENCE_CHUNK_ELEMENTS = 1 << 27


@dataclasses.dataclass
class PagedKV:
    """A poisoned paged cache and the block table / lengths that address it."""

    seqlens: torch.Tensor  # [b] int32, device
    block_table: torch.Tensor  # [b, max_pages] int32, unused entries = PADDING_PAGE_ID
    k_cache: torch.Tensor  # [num_pages, page_size, h_kv, d_qk], maybe a strided view
    dense: Optional[torch.Tensor] = None  # [b, max_len, h_kv, d_qk] in the cache's dtype, zero past each length


def make_paged_kv(b: int, s_k: int, *, varlen: bool, zero_lengths: bool = False, min_len: int = 1,
                  dtype=torch.bfloat16, strided: bool = False, seed: int = 0, device="cuda", page_size: int = PAGE,
                  h_kv: int = 1, d_qk: int = D_QK) -> PagedKV:
    rng = random.Random(seed)
    torch.manual_seed(seed)
    lengths = [s_k] * b
    if varlen:
        lengths = [max(int(rng.normalvariate(s_k, s_k / 2)), min_len) for _ in range(b)]
    if zero_lengths:
        lengths = [0 if rng.random() < 0.5 else n for n in lengths]
    max_len = max(lengths)
    pages_per_request = max(math.ceil(math.ceil(max_len / 256) * 256 / page_size), 1)
    num_pages = b * pages_per_request
    block_table = torch.randperm(num_pages, device=device, dtype=torch.int64).to(torch.int32)
    block_table = block_table.view(b, pages_per_request)
    shape = (num_pages, page_size, h_kv, d_qk)
    if strided:  # a view of a wider cache, 64 more (NaN) columns per token; h_kv = 1: kv[..., :d].unsqueeze(-2)
        storage = torch.full((num_pages, page_size, h_kv * d_qk + 64), float("nan"), dtype=dtype, device=device)
        if h_kv == 1:
            k_cache = storage[..., :d_qk].unsqueeze(-2)
        else:
            k_cache = storage[..., :h_kv * d_qk].unflatten(-1, (h_kv, d_qk))
    else:
        k_cache = torch.empty(shape, dtype=dtype, device=device)
    k_cache.copy_((torch.randn(shape, device=device) / 10).clamp_(-1, 1))
    poison(k_cache, block_table, lengths)
    seqlens = torch.tensor(lengths, dtype=torch.int32, device=device)
    return PagedKV(seqlens, block_table, k_cache)


def poison(k_cache: torch.Tensor, block_table: torch.Tensor, lengths) -> None:
    """NaN in every cache slot past each request's length; FlashMLA's padding id in its unused table entries."""
    page_size = k_cache.shape[1]
    for i, n in enumerate(lengths):
        used = math.ceil(n / page_size)
        k_cache[block_table[i, used:].long()] = float("nan")
        if n % page_size:
            k_cache[block_table[i, used - 1].long(), n % page_size:] = float("nan")
        block_table[i, used:] = PADDING_PAGE_ID


def dense_kv(kv: PagedKV) -> torch.Tensor:
    """[b, max_len, h_kv, d_qk] rows of each request in the cache's dtype, zero past its length (NaN poison
    removed)."""
    if kv.dense is None:
        num_pages, page_size, h_kv, d_qk = kv.k_cache.shape
        lengths = kv.seqlens.long()
        max_len = max(int(lengths.max()), 1)
        pages = math.ceil(max_len / page_size)
        ids = kv.block_table[:, :pages].long().clamp(0, num_pages - 1)
        rows = kv.k_cache[ids].reshape(ids.shape[0], pages * page_size, h_kv, d_qk)[:, :max_len]
        valid = torch.arange(max_len, device=rows.device)[None, :] < lengths[:, None]
        kv.dense = rows.masked_fill(~valid[..., None, None], 0.0)
    return kv.dense


def make_q(b: int, s_q: int, h_q: int, *, dtype=torch.bfloat16, seed: int = 1, device="cuda",
           d_qk: int = D_QK) -> torch.Tensor:
    generator = torch.Generator(device=device).manual_seed(seed)
    return (torch.randn(b, s_q, h_q, d_qk, generator=generator, device=device) / 10).clamp_(-1, 1).to(dtype)


def reference(q: torch.Tensor, kv: PagedKV, softmax_scale: float, causal: bool, d_v: int = D_V,
              batch_chunk: int = 32) -> Tuple[torch.Tensor, torch.Tensor]:
    """fp32 attention: out [b, s_q, h_q, d_v] in q's dtype and lse [b, h_q, s_q] (natural log; +inf and
    out = 0 for a query row that sees no key). Query head h attends over KV head h // (h_q / h_kv)."""
    b, s_q, h_q, d_qk = q.shape
    keys = dense_kv(kv)  # [b, L, h_kv, d_qk]
    h_kv = keys.shape[2]
    assert keys.shape[3] == d_qk and h_q % h_kv == 0, (keys.shape, q.shape)
    heads = h_q // h_kv  # query heads per KV head
    rows = s_q * heads   # query rows per KV head, row r = (token r // heads, head r % heads)
    lengths = kv.seqlens.long()
    out = torch.empty(b, s_q, h_q, d_v, dtype=torch.float32, device=q.device)
    lse = torch.empty(b, h_q, s_q, dtype=torch.float32, device=q.device)
    token = torch.arange(keys.shape[1], device=q.device)
    row_token = torch.arange(s_q, device=q.device).repeat_interleave(heads)
    per_request = h_kv * keys.shape[1] * max(rows, d_qk)  # fp32 elements of its scores or its keys
    chunk = max(1, min(batch_chunk, REFERENCE_CHUNK_ELEMENTS // per_request))
    for begin in range(0, b, chunk):
        end = min(begin + chunk, b)
        n = end - begin
        k = keys[begin:end].float().permute(0, 2, 1, 3)  # [n, h_kv, L, d_qk]
        qg = q[begin:end].float().reshape(n, s_q, h_kv, heads, d_qk).transpose(1, 2).reshape(n, h_kv, rows, d_qk)
        scores = qg @ k.transpose(-1, -2) * softmax_scale  # [n, h_kv, rows, L]
        seen = lengths[begin:end]
        visible = token[None, None, None, :] < seen[:, None, None, None]
        if causal:
            last = seen[:, None] - s_q + row_token[None, :]  # [n, rows]: the last key each row sees
            visible = visible & (token[None, None, None, :] <= last[:, None, :, None])
        scores = scores.masked_fill(~visible, float("-inf"))
        row_lse = torch.logsumexp(scores, dim=-1)  # [n, h_kv, rows]
        empty = torch.isneginf(row_lse)
        p = torch.exp(scores - torch.where(empty, 0.0, row_lse)[..., None])
        o = (p @ k[..., :d_v]).masked_fill(empty[..., None], 0.0)  # [n, h_kv, rows, d_v]
        out[begin:end] = o.view(n, h_kv, s_q, heads, d_v).transpose(1, 2).reshape(n, s_q, h_q, d_v)
        row_lse = row_lse.masked_fill(empty, float("inf")).view(n, h_kv, s_q, heads)
        lse[begin:end] = row_lse.permute(0, 1, 3, 2).reshape(n, h_q, s_q)
    return out.to(q.dtype), lse


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
