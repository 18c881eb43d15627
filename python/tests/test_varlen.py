"""Variable query lengths through etap's native call (cu_seqlens_q / max_seqlen_q, FlashAttention-3's varlen
form): packed q [total_q, h_q, d_qk] against the fp32 reference of each request on its own, causal masks
aligned per request, q_len 0 and seqlen 0 requests, padding tokens left untouched, a CUDA graph replayed with
other lengths, torch.compile, and the errors of a malformed call."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import etap  # noqa: E402
import mla_data  # noqa: E402

pytestmark = pytest.mark.torch
SCALE = 0.1352337788608801
PAD_TOKENS = 3  # packed tokens past the last request's, NaN in q: never read into a stored row


def packed_q(q_lens, h_q, *, d_qk=576, dtype=torch.bfloat16, seed=1):
    total = sum(q_lens) + PAD_TOKENS
    generator = torch.Generator(device="cuda").manual_seed(seed)
    q = (torch.randn(total, h_q, d_qk, generator=generator, device="cuda") / 10).clamp_(-1, 1).to(dtype)
    q[sum(q_lens):] = float("nan")
    offsets = [0]
    for n in q_lens:
        offsets.append(offsets[-1] + n)
    return q, torch.tensor(offsets, dtype=torch.int32, device="cuda")


def reference_each(q, cu, kv, causal, d_v=512):
    """The fp32 reference of each request alone: out [total_q, h_q, d_v], lse [h_q, total_q] (NaN where no
    request owns the token)."""
    total, h_q, _ = q.shape
    out = torch.full((total, h_q, d_v), float("nan"), dtype=q.dtype, device=q.device)
    lse = torch.full((h_q, total), float("nan"), device=q.device)
    offsets = cu.tolist()
    for i in range(len(offsets) - 1):
        first, last = offsets[i], offsets[i + 1]
        if last == first:
            continue
        one = mla_data.PagedKV(kv.seqlens[i:i + 1], kv.block_table[i:i + 1], kv.k_cache)
        ref_out, ref_lse = mla_data.reference(q[first:last].unsqueeze(0), one, SCALE, causal, d_v=d_v)
        out[first:last] = ref_out[0]
        lse[:, first:last] = ref_lse[0]
    return out, lse


def run_varlen(q, cu, kv, max_q, causal, **kw):
    b = cu.shape[0] - 1
    h_q = q.shape[1]
    page_size = kv.k_cache.shape[1]
    h_kv = kv.k_cache.shape[2]
    plan = etap.plan(kv.seqlens, max_q, h_q, h_kv=h_kv, page_size=page_size, block_table=kv.block_table, **kw)
    out = torch.full((q.shape[0], h_q, 512), float("nan"), dtype=q.dtype, device=q.device)
    lse = torch.full((h_q, q.shape[0]), float("nan"), device=q.device)
    workspace = etap.empty_workspace(b, max_q, h_q, h_kv=h_kv, page_size=page_size, **kw)
    return etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=SCALE, causal=causal,
                       out=out, lse=lse, workspace=workspace, cu_seqlens_q=cu, max_seqlen_q=max_q, **kw)


CASES = [  # (q_lens, max_seqlen_q, h_q, h_kv, s_k, page_size, causal)
    ([4, 0, 1, 3, 2], 4, 16, 1, 1000, 64, True),
    ([2, 3, 0, 1, 3, 3, 1, 0], 3, 64, 1, 4096, 64, True),
    ([2, 1, 2, 0], 2, 128, 1, 1000, 64, False),
    ([2, 0, 1, 2], 2, 32, 2, 300, 1, True),
    ([8] * 4 + [0, 5], 8, 16, 1, 140, 16, True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"b{len(c[0])}-max{c[1]}-hq{c[2]}-kv{c[3]}-page{c[5]}")
def test_against_each_request_alone(device, case):
    q_lens, max_q, h_q, h_kv, s_k, page_size, causal = case
    kv = mla_data.make_paged_kv(len(q_lens), s_k, varlen=True, seed=len(q_lens), page_size=page_size, h_kv=h_kv)
    q, cu = packed_q(q_lens, h_q, seed=h_q)
    out, lse = run_varlen(q, cu, kv, max_q, causal)
    owned = sum(q_lens)
    assert torch.isnan(out[owned:]).all() and torch.isnan(lse[:, owned:]).all(), "padding tokens were written"
    ref_out, ref_lse = reference_each(q, cu, kv, causal)
    mla_data.check_out_lse(out[:owned], lse[:, :owned].contiguous(), ref_out[:owned], ref_lse[:, :owned].contiguous())
    again, again_lse = run_varlen(q, cu, kv, max_q, causal)
    assert torch.equal(out[:owned], again[:owned]) and torch.equal(lse[:, :owned], again_lse[:, :owned])


def test_split_requests_on_few_sms(device):
    """Three SMs: long requests split, and the combine merges their packed rows."""
    q_lens = [4, 1, 0, 3]
    kv = mla_data.make_paged_kv(len(q_lens), 4096, varlen=True, seed=11)
    q, cu = packed_q(q_lens, 64, seed=12)
    out, lse = run_varlen(q, cu, kv, 4, True, num_sms=3)
    ref_out, ref_lse = reference_each(q, cu, kv, True)
    owned = sum(q_lens)
    mla_data.check_out_lse(out[:owned], lse[:, :owned].contiguous(), ref_out[:owned], ref_lse[:, :owned].contiguous())


def test_empty_request_with_queries_gives_zero_and_plus_infinity(device):
    kv = mla_data.make_paged_kv(3, 200, varlen=False, seed=13)
    kv.seqlens.copy_(torch.tensor([200, 0, 64], dtype=torch.int32))
    q, cu = packed_q([1, 2, 2], 16, seed=14)
    out, lse = run_varlen(q, cu, kv, 2, True)
    assert torch.count_nonzero(out[1:3]) == 0 and torch.isposinf(lse[:, 1:3]).all()
    assert torch.isfinite(lse[:, 0]).all() and torch.isfinite(lse[:, 3:5]).all()


def test_graph_replays_with_new_query_lengths(device):
    """plan + decode captured once; the lengths change on the device between replays (same total_q)."""
    kv = mla_data.make_paged_kv(4, 2000, varlen=True, seed=15)
    q, cu = packed_q([1, 4, 0, 3], 64, seed=16)
    max_q, h_q = 4, 64
    plan = etap.empty_plan(4, max_q, h_q)
    workspace = etap.empty_workspace(4, max_q, h_q)
    out = torch.empty(q.shape[0], h_q, 512, dtype=q.dtype, device="cuda")
    lse = torch.empty(h_q, q.shape[0], device="cuda")

    def step():
        etap.plan(kv.seqlens, max_q, h_q, block_table=kv.block_table, out=plan)
        etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=SCALE, causal=True, out=out,
                    lse=lse, workspace=workspace, cu_seqlens_q=cu, max_seqlen_q=max_q)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    for q_lens, seed in (([1, 4, 0, 3], 16), ([4, 0, 2, 2], 17), ([2, 2, 2, 2], 18)):
        new_q, new_cu = packed_q(q_lens, h_q, seed=seed)
        q.copy_(new_q)
        cu.copy_(new_cu)
        out.fill_(float("nan"))
        lse.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        ref_out, ref_lse = reference_each(q, cu, kv, True)
        owned = sum(q_lens)
        mla_data.check_out_lse(out[:owned], lse[:, :owned].contiguous(), ref_out[:owned],
                               ref_lse[:, :owned].contiguous())


def test_compiled_call_matches_eager(device):
    kv = mla_data.make_paged_kv(3, 500, varlen=True, seed=19)
    q, cu = packed_q([2, 0, 3], 16, seed=20)
    plan = etap.plan(kv.seqlens, 3, 16, block_table=kv.block_table)

    def call(q, cu):
        return etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=SCALE, causal=True,
                           cu_seqlens_q=cu, max_seqlen_q=3)

    eager = call(q, cu)
    compiled = torch.compile(call, fullgraph=True)(q, cu)
    assert torch.equal(eager[0][:5], compiled[0][:5]) and torch.equal(eager[1][:, :5], compiled[1][:, :5])


def test_malformed_calls_raise(device):
    kv = mla_data.make_paged_kv(2, 100, varlen=False, seed=21)
    q, cu = packed_q([1, 2], 16)
    plan = etap.plan(kv.seqlens, 2, 16)
    with pytest.raises(etap.InvalidArgumentError, match="max_seqlen_q"):
        etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=SCALE, cu_seqlens_q=cu)
    with pytest.raises(etap.InvalidArgumentError, match=r"cu_seqlens_q must have shape \[3\]"):
        etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=SCALE, cu_seqlens_q=cu[:2],
                    max_seqlen_q=2)
    with pytest.raises(etap.UnsupportedError, match="s_q·h_q = 4112"):
        etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=SCALE, cu_seqlens_q=cu,
                    max_seqlen_q=257, workspace=etap.empty_workspace(2, 1, 16))
    # A length over max_seqlen_q: checked mode names the request.
    with pytest.raises(etap.CheckFailedError, match="request 1"):
        etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=SCALE, cu_seqlens_q=cu,
                    max_seqlen_q=1, checked=True, workspace=etap.empty_workspace(2, 2, 16))
