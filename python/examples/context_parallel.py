"""Decode context parallelism with etap: every rank attends over its shard of each request's KV pages,
the partial outputs and LSEs are all-gathered over NCCL (torch.distributed) and merged with etap.merge_states.

    torchrun --nproc-per-node N python/examples/context_parallel.py [--layout interleaved|contiguous] ...
    python python/examples/context_parallel.py --simulate N ...   # one GPU: the N shards one after another

Each run builds the same random problem on every rank (same seed), keeps only its shard's pages in a cache of
its own (as a rank of a DCP group does), decodes, gathers, merges, and compares the merged result with etap's
single-GPU decode of the whole cache and with an fp32 reference (FlashMLA's tolerances). NVLink multicast is
not used (NCCL_NVLS_ENABLE=0 is set before NCCL starts).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import List, Tuple

os.environ.setdefault("NCCL_NVLS_ENABLE", "0")

import torch  # noqa: E402

import etap  # noqa: E402
from etap.sharding import Shard, shard_requests  # noqa: E402

PAGE = 64
D_QK, D_V = 576, 512
SCALE = 0.1352337788608801


def make_problem(b: int, seqlens: List[int], s_q: int, h_q: int, seed: int):
    """The whole problem, identical on every rank: q, a paged cache with pages in random order, tables."""
    generator = torch.Generator(device="cuda").manual_seed(seed)
    pages = [math.ceil(n / PAGE) for n in seqlens]
    width = max(max(pages), 1)
    num_pages = max(sum(pages), 1)
    k_cache = (torch.randn((num_pages, PAGE, 1, D_QK), generator=generator, device="cuda") / 10).clamp_(-1, 1)
    k_cache = k_cache.to(torch.bfloat16)
    order = torch.randperm(num_pages, generator=generator, device="cuda").to(torch.int32)
    block_table = torch.full((b, width), etap.PADDING_PAGE_ID, dtype=torch.int32, device="cuda")
    start = 0
    for i, n in enumerate(pages):
        block_table[i, :n] = order[start:start + n]
        start += n
    q = (torch.randn((b, s_q, h_q, D_QK), generator=generator, device="cuda") / 10).clamp_(-1, 1).to(torch.bfloat16)
    seqlens_t = torch.tensor(seqlens, dtype=torch.int32, device="cuda")
    return q, k_cache, block_table, seqlens_t


def local_inputs(k_cache: torch.Tensor, block_table: torch.Tensor, shard: Shard):
    """This rank's own cache (its shard's pages only), its block table into it and its seqlens."""
    b = block_table.shape[0]
    width = max(max((len(p) for p in shard.pages), default=0), 1)
    table = block_table.tolist()
    ids = [table[i][page] for i, pages in enumerate(shard.pages) for page in pages]  # global page ids, in order
    local_cache = k_cache[torch.tensor(ids, dtype=torch.long, device="cuda")] if ids else k_cache[:1]
    local_table = torch.full((b, width), etap.PADDING_PAGE_ID, dtype=torch.int32, device="cuda")
    start = 0
    for i, pages in enumerate(shard.pages):
        local_table[i, :len(pages)] = torch.arange(start, start + len(pages), dtype=torch.int32, device="cuda")
        start += len(pages)
    return local_cache, local_table, torch.tensor(shard.seqlens, dtype=torch.int32, device="cuda")


def shard_decode(q, local_cache, local_table, local_seqlens, holds_tail: List[bool], causal: bool,
                 lse_base: str = "e") -> Tuple[torch.Tensor, torch.Tensor]:
    """One rank's partial (out [b, s_q, h_q, 512] in q's dtype, lse [b, h_q, s_q] fp32; +inf: no key here).

    Causal MTP: the requests whose masked keys this rank holds are decoded with the causal mask, the others
    without it (none of their keys here is masked); each request is non-empty in one of the two calls."""
    s_q, h_q = q.shape[1], q.shape[2]
    if not causal or s_q == 1:
        plan = etap.plan(local_seqlens, s_q, h_q)
        return etap.decode(q, local_cache, local_table, local_seqlens, plan, softmax_scale=SCALE, causal=causal,
                           lse_base=lse_base)
    tail = torch.tensor(holds_tail, dtype=torch.bool, device="cuda")
    zero = torch.zeros_like(local_seqlens)
    results = []
    for masked, lengths in ((True, torch.where(tail, local_seqlens, zero)),
                            (False, torch.where(tail, zero, local_seqlens))):
        plan = etap.plan(lengths, s_q, h_q)
        results.append(etap.decode(q, local_cache, local_table, lengths, plan, softmax_scale=SCALE,
                                   causal=masked, lse_base=lse_base))
    (out_m, lse_m), (out_u, lse_u) = results
    out = torch.where(tail[:, None, None, None], out_m, out_u)
    lse = torch.where(tail[:, None, None], lse_m, lse_u)
    return out, lse


def merge_partials(outs: torch.Tensor, lses: torch.Tensor, lse_base: str = "e"):
    """Merged (out [b, s_q, h_q, 512] fp32, lse [b, h_q, s_q]) of W partial states stacked on dim 0:
    outs [W, b, s_q, h_q, 512], lses [W, b, h_q, s_q]."""
    world, b, s_q, h_q, d_v = outs.shape
    rows = b * s_q * h_q
    o_states = outs.float().reshape(world, rows, d_v).contiguous()
    lse_states = lses.permute(0, 1, 3, 2).reshape(world, rows).contiguous()  # rows in (b, s, h) order
    out, lse = etap.merge_states(o_states, lse_states, lse_base=lse_base)
    return out.view(b, s_q, h_q, d_v), lse.view(b, s_q, h_q).permute(0, 2, 1)


def reference(q, k_cache, block_table, seqlens: List[int], causal: bool):
    """fp32 reference: out rounded to q's dtype (FlashMLA's tests), lse natural; empty: out 0, lse +inf."""
    b, s_q, h_q, _ = q.shape
    outs, lses = [], []
    for i, n in enumerate(seqlens):
        pages = math.ceil(n / PAGE)
        keys = k_cache[block_table[i, :pages].long()].reshape(-1, D_QK)[:n].float()
        scores = q[i].float().reshape(s_q * h_q, D_QK) @ keys.T * SCALE
        if causal:
            limit = n - s_q + torch.arange(s_q, device="cuda").repeat_interleave(h_q)
            scores = scores.masked_fill(torch.arange(n, device="cuda")[None, :] > limit[:, None], float("-inf"))
        lse = torch.logsumexp(scores, dim=-1)
        empty = torch.isneginf(lse)
        out = (torch.softmax(scores.masked_fill(empty[:, None], 0.0), dim=-1) @ keys[:, :D_V])
        outs.append(out.masked_fill(empty[:, None], 0.0).reshape(s_q, h_q, D_V))
        lses.append(lse.masked_fill(empty, float("inf")).reshape(s_q, h_q).T)
    return torch.stack(outs).to(q.dtype), torch.stack(lses)


def compare(name: str, out, lse, ref_out, ref_lse) -> List[str]:
    """FlashMLA's criteria: out within 8e-4 or 2.01/128 relative per element, cosine diff ≤ 5e-6; lse within
    1e-6 or 8.01/65536 relative; ±inf in the same places."""
    problems = []
    a, r = out.float(), ref_out.float()
    err = (a - r).abs()
    if bool(((err >= 8e-4) & (err >= 2.01 / 128 * (r.abs() + 1e-6))).any()):
        problems.append(f"{name}: out max |Δ| {err.max().item():.3g}")
    a64, r64 = a.double(), r.double()
    if float((r64 * r64).sum()) > 1e-12:
        cos = 1 - 2 * float((a64 * r64).sum()) / float((a64 * a64 + r64 * r64).sum())
        if abs(cos) > 5e-6:
            problems.append(f"{name}: out cosine difference {cos:.3g}")
    inf_a, inf_r = torch.isinf(lse), torch.isinf(ref_lse)
    if not torch.equal(inf_a, inf_r):
        problems.append(f"{name}: lse +inf in {int(inf_a.sum())} rows, reference {int(inf_r.sum())}")
    else:
        d = (lse - ref_lse)[~inf_a].abs()
        rel = d / ref_lse[~inf_a].abs().clamp_min(1e-6)
        if bool(((d >= 1e-6) & (rel >= 8.01 / 65536)).any()):
            problems.append(f"{name}: lse max rel Δ {rel.max().item():.3g}")
    return problems


def run(seqlens: List[int], s_q: int, h_q: int, causal: bool, world: int, layout: str, seed: int = 0,
        simulate: bool = True, timing: bool = False) -> dict:
    """Shard decode + gather + merge for `world` ranks (simulated one after another on this GPU, or this
    process's rank of the initialised default process group) against the single-GPU decode and the
    reference. Returns the problems found (empty: pass) and, with `timing`, µs per step."""
    b = len(seqlens)
    q, k_cache, block_table, seqlens_t = make_problem(b, seqlens, s_q, h_q, seed)
    ranks = range(world) if simulate else [torch.distributed.get_rank()]
    partials = {}
    inputs = {}
    for rank in ranks:
        shard = shard_requests(seqlens, world, rank, layout=layout, page_size=PAGE, s_q=s_q)
        inputs[rank] = (local_inputs(k_cache, block_table, shard), shard.holds_tail)
        partials[rank] = shard_decode(q, *inputs[rank][0], inputs[rank][1], causal)
    if simulate:
        outs = torch.stack([partials[r][0] for r in range(world)])
        lses = torch.stack([partials[r][1] for r in range(world)])
    else:
        out_local, lse_local = partials[torch.distributed.get_rank()]
        outs = torch.empty((world,) + tuple(out_local.shape), dtype=out_local.dtype, device="cuda")
        lses = torch.empty((world,) + tuple(lse_local.shape), dtype=lse_local.dtype, device="cuda")
        torch.distributed.all_gather_into_tensor(outs, out_local.contiguous())
        torch.distributed.all_gather_into_tensor(lses, lse_local.contiguous())
    merged_out, merged_lse = merge_partials(outs, lses)

    whole_plan = etap.plan(seqlens_t, s_q, h_q)
    single_out, single_lse = etap.decode(q, k_cache, block_table, seqlens_t, whole_plan, softmax_scale=SCALE,
                                         causal=causal)
    ref_out, ref_lse = reference(q, k_cache, block_table, seqlens, causal)
    problems = compare("merged vs reference", merged_out.to(q.dtype), merged_lse, ref_out, ref_lse)
    problems += compare("single-GPU vs reference", single_out, single_lse, ref_out, ref_lse)
    result = {"problems": problems}
    if timing:
        rank = next(iter(ranks))
        (local_cache, local_table, local_seqlens), holds_tail = inputs[rank]

        def step():
            out, lse = shard_decode(q, local_cache, local_table, local_seqlens, holds_tail, causal)
            if not simulate:
                torch.distributed.all_gather_into_tensor(outs, out)
                torch.distributed.all_gather_into_tensor(lses, lse)
            return merge_partials(outs, lses)

        def single():
            return etap.decode(q, k_cache, block_table, seqlens_t, whole_plan, softmax_scale=SCALE, causal=causal)

        result["step_us"] = time_us(step)
        result["merge_us"] = time_us(lambda: merge_partials(outs, lses))
        result["single_gpu_us"] = time_us(single)
    return result


def time_us(fn, iters: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulate", type=int, default=0, metavar="W",
                        help="run W ranks one after another on this GPU instead of under torchrun")
    parser.add_argument("--layout", choices=("interleaved", "contiguous"), default="interleaved")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seqlen", type=int, default=32768, help="tokens per request")
    parser.add_argument("--h-q", type=int, default=16)
    parser.add_argument("--s-q", type=int, default=1)
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--timing", action="store_true", help="also time one step (shard decode + gather + merge)")
    args = parser.parse_args(argv)
    seqlens = [args.seqlen] * args.batch
    if args.simulate:
        world, simulate, rank = args.simulate, True, 0
    else:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl")
        world, rank, simulate = torch.distributed.get_world_size(), torch.distributed.get_rank(), False
    result = run(seqlens, args.s_q, args.h_q, args.causal, world, args.layout, simulate=simulate, timing=args.timing)
    if rank == 0:
        verdict = "PASS" if not result["problems"] else "FAIL: " + "; ".join(result["problems"])
        print(f"context parallel, {world} rank(s){' simulated' if simulate else ''}, {args.layout}, b={args.batch} "
              f"s_k={args.seqlen} h_q={args.h_q} s_q={args.s_q}{' causal' if args.causal else ''}: {verdict}")
        if args.timing:
            what = "one rank's shard decode + merge" if simulate else "shard decode + all-gather + merge"
            print(f"  step ({what}) {result['step_us']:.1f} µs, of which merge {result['merge_us']:.1f} µs; "
                  f"single-GPU decode of the whole cache {result['single_gpu_us']:.1f} µs (synchronised loop)")
    if not simulate:
        torch.distributed.destroy_process_group()
    return 0 if not result["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
