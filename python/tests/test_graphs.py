"""CUDA graphs (capture once, replay with new seqlens, block tables and KV contents), torch.compile
(fullgraph=True) and two streams at once."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import etap  # noqa: E402
import etap.flash_mla as flash_mla  # noqa: E402
import etap.flash_mla_legacy as flash_mla_legacy  # noqa: E402
import mla_data  # noqa: E402

pytestmark = pytest.mark.torch
SCALE = 0.1352


class StaticInputs:
    """Fixed-address inputs of a captured step: q, a cache of `pages_per_request` pages per request, a
    full-width block table and seqlens. `refill` gives them new contents in place."""

    def __init__(self, b, s_q, h_q, max_len, seed=0):
        self.b, self.s_q, self.h_q = b, s_q, h_q
        self.kv = mla_data.make_paged_kv(b, max_len, varlen=False, seed=seed)
        self.q = mla_data.make_q(b, s_q, h_q, seed=seed + 1)
        self.max_len = max_len
        self.seed = seed

    def refill(self, lengths):
        """New lengths, a new page order (same pages), new cache contents and a new q, all in place."""
        self.seed += 10
        fresh = mla_data.make_paged_kv(self.b, self.max_len, varlen=False, seed=self.seed)
        self.kv.k_cache.copy_(fresh.k_cache)
        self.kv.block_table.copy_(fresh.block_table)  # fixed lengths: every entry used, a fresh permutation
        mla_data.poison(self.kv.k_cache, self.kv.block_table, lengths)
        self.kv.seqlens.copy_(torch.tensor(lengths, dtype=torch.int32))
        self.kv.dense = None
        self.q.copy_(mla_data.make_q(self.b, self.s_q, self.h_q, seed=self.seed + 1))

    def reference(self, causal, q=None):
        return mla_data.reference(self.q if q is None else q, self.kv, SCALE, causal)


def capture(fn):
    """Warms `fn` up on a side stream (as PyTorch recommends), captures it, returns (graph, its outputs)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = fn()
    return graph, outputs


REPLAY_LENGTHS = ([1000, 1, 0, 4000, 64, 65, 2047, 3999], [4096] * 8, [0] * 7 + [1], [130, 2200, 0, 0, 1, 3000, 64, 7])


def test_graph_newer_flash_mla_form_replans_on_replay(device):
    """vLLM's pattern: the sched_meta is made outside, its first call (the plan) is captured with the layers."""
    inputs = StaticInputs(8, 2, 16, 4096)
    q2 = inputs.q * 0.5  # a second layer's query (fixed address too)

    def step():
        meta, _ = flash_mla.get_mla_metadata()
        layer1 = flash_mla.flash_mla_with_kvcache(inputs.q, inputs.kv.k_cache, inputs.kv.block_table,
                                                  inputs.kv.seqlens, 512, meta, None, SCALE, True)
        layer2 = flash_mla.flash_mla_with_kvcache(q2, inputs.kv.k_cache, inputs.kv.block_table, inputs.kv.seqlens,
                                                  512, meta, None, SCALE, True)
        return layer1, layer2

    graph, (layer1, layer2) = capture(step)
    for lengths in REPLAY_LENGTHS:
        inputs.refill(lengths)
        q2.copy_(inputs.q * 0.5)
        graph.replay()
        torch.cuda.synchronize()
        mla_data.check_out_lse(*layer1, *inputs.reference(True))
        mla_data.check_out_lse(*layer2, *inputs.reference(True, q2))


# (s_q, h_q): TP8; TP1 with MTP (256 rows, four row tiles); 3 tokens of 40 heads, whose rows need more tiles
# than the metadata's one token of 120 heads, so that the captured call plans for itself.
@pytest.mark.parametrize("s_q,h_q", [(1, 16), (2, 128), (3, 40)])
def test_graph_older_flash_mla_form_sglang_pattern(device, s_q, h_q):
    """SGLang's pattern: metadata allocated once at the largest batch, each step's get_mla_metadata copy_()d
    into it outside the graph; the captured block table is a [:bs, :pages at capture] view of a wider buffer
    and replays run longer sequences than the capture did."""
    max_bs, bs = 16, 8
    inputs = StaticInputs(bs, s_q, h_q, 4096)
    table_buffer = torch.full((max_bs, inputs.kv.block_table.shape[1]), -1, dtype=torch.int32, device="cuda")
    seqlens_buffer = torch.ones(max_bs, dtype=torch.int32, device="cuda")
    metadata_buffer, splits_buffer = flash_mla_legacy.get_mla_metadata(
        torch.ones(max_bs, dtype=torch.int32, device="cuda"), s_q * h_q, 1)

    def prepare(lengths):
        seqlens_buffer[:bs].copy_(torch.tensor(lengths, dtype=torch.int32))
        table_buffer[:bs].copy_(inputs.kv.block_table)
        metadata, splits = flash_mla_legacy.get_mla_metadata(seqlens_buffer[:bs], s_q * h_q, 1)
        metadata_buffer.copy_(metadata)  # same shape for every batch up to 1024
        splits_buffer[:bs + 1].copy_(splits)

    capture_lengths = [1024] * bs  # SGLang's fill value: 16 pages
    inputs.kv.seqlens.copy_(torch.tensor(capture_lengths, dtype=torch.int32))
    prepare(capture_lengths)
    captured_table = table_buffer[:bs, :16]

    def step():
        return flash_mla_legacy.flash_mla_with_kvcache(inputs.q, inputs.kv.k_cache, captured_table,
                                                       seqlens_buffer[:bs], 512, metadata_buffer,
                                                       splits_buffer[:bs + 1], SCALE, True)

    graph, (out, lse) = capture(step)
    for lengths in REPLAY_LENGTHS:
        inputs.refill(lengths)
        prepare(lengths)
        graph.replay()
        torch.cuda.synchronize()
        mla_data.check_out_lse(out, lse, *inputs.reference(True))


def test_graph_native_call_with_caller_buffers(device):
    inputs = StaticInputs(8, 4, 16, 4096)
    plan = etap.empty_plan(8, 4, 16)
    workspace = etap.empty_workspace(8, 4, 16)
    out = torch.empty(8, 4, 16, 512, dtype=torch.bfloat16, device="cuda")
    lse = torch.empty(8, 16, 4, device="cuda")

    def step():
        etap.plan(inputs.kv.seqlens, 4, 16, block_table=inputs.kv.block_table, out=plan)
        return etap.decode(inputs.q, inputs.kv.k_cache, inputs.kv.block_table, inputs.kv.seqlens, plan,
                           softmax_scale=SCALE, causal=True, out=out, lse=lse, workspace=workspace)

    graph, (graph_out, graph_lse) = capture(step)
    assert graph_out is out and graph_lse is lse
    for lengths in REPLAY_LENGTHS:
        inputs.refill(lengths)
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        mla_data.check_out_lse(out, lse, *inputs.reference(True))


def test_torch_compile_fullgraph(device):
    inputs = StaticInputs(4, 2, 16, 2048)
    inputs.refill([2048, 100, 0, 1500])
    plan = etap.empty_plan(4, 2, 16)
    workspace = etap.empty_workspace(4, 2, 16)
    out = torch.empty(4, 2, 16, 512, dtype=torch.bfloat16, device="cuda")
    lse = torch.empty(4, 16, 2, device="cuda")
    kv = inputs.kv

    def with_buffers(q, k_cache, block_table, seqlens):
        etap.plan(seqlens, 2, 16, out=plan)
        o, l = etap.decode(q, k_cache, block_table, seqlens, plan, softmax_scale=SCALE, causal=True, out=out, lse=lse,
                           workspace=workspace)
        return o.float() * 2, l

    def functional(q, k_cache, block_table, seqlens):
        o, l = etap.decode(q, k_cache, block_table, seqlens, etap.plan(seqlens, 2, 16), softmax_scale=SCALE,
                           causal=True)
        return o.float() * 2, l

    def legacy(q, k_cache, block_table, seqlens):
        metadata, splits = flash_mla_legacy.get_mla_metadata(seqlens, 32, 1)
        o, l = flash_mla_legacy.flash_mla_with_kvcache(q, k_cache, block_table, seqlens, 512, metadata, splits,
                                                       SCALE, True)
        return o.float() * 2, l

    ref_out, ref_lse = inputs.reference(True)
    # Inductor for the engine-like call; the others only need tracing (aot_eager compiles in seconds).
    for fn, backend in ((with_buffers, "inductor"), (functional, "aot_eager"), (legacy, "aot_eager")):
        compiled = torch.compile(fn, fullgraph=True, backend=backend)
        o, l = compiled(inputs.q, kv.k_cache, kv.block_table, kv.seqlens)
        mla_data.check_out_lse((o / 2).to(torch.bfloat16), l, ref_out, ref_lse)
        eager = fn(inputs.q, kv.k_cache, kv.block_table, kv.seqlens)
        assert torch.equal(o, eager[0]) and torch.equal(l, eager[1]), fn.__name__


def test_torch_compile_older_form_that_plans_for_itself(device):
    """3 tokens of 40 heads: the older form's metadata (one token of 120 heads) has fewer row tiles, so the
    call plans for its own shape; traced, that plan is one more op in the graph."""
    inputs = StaticInputs(4, 3, 40, 2048)
    inputs.refill([2048, 100, 0, 1500])
    kv = inputs.kv

    def legacy(q, k_cache, block_table, seqlens):
        metadata, splits = flash_mla_legacy.get_mla_metadata(seqlens, 120, 1)
        o, l = flash_mla_legacy.flash_mla_with_kvcache(q, k_cache, block_table, seqlens, 512, metadata, splits,
                                                       SCALE, True)
        return o.float() * 2, l

    compiled = torch.compile(legacy, fullgraph=True, backend="aot_eager")
    o, l = compiled(inputs.q, kv.k_cache, kv.block_table, kv.seqlens)
    mla_data.check_out_lse((o / 2).to(torch.bfloat16), l, *inputs.reference(True))
    eager = legacy(inputs.q, kv.k_cache, kv.block_table, kv.seqlens)
    assert torch.equal(o, eager[0]) and torch.equal(l, eager[1])


def test_custom_ops_are_registered_with_fake_kernels(device):
    for name in ("plan", "decode", "decode_out", "merge_states"):
        assert hasattr(torch.ops.etap, name)
    q = mla_data.make_q(2, 1, 16)
    kv = mla_data.make_paged_kv(2, 300, varlen=False)
    plan = etap.plan(kv.seqlens, 1, 16)
    checks = ("test_schema", "test_faketensor")
    torch.library.opcheck(torch.ops.etap.decode.default,
                          (q, kv.k_cache, kv.block_table, kv.seqlens, plan, 512, SCALE, False, 0, False, 0, False),
                          test_utils=checks)
    out = torch.empty(2, 1, 16, 512, dtype=torch.bfloat16, device="cuda")
    lse = torch.empty(2, 16, 1, device="cuda")
    torch.library.opcheck(torch.ops.etap.decode_out.default,
                          (q, kv.k_cache, kv.block_table, kv.seqlens, plan, etap.empty_workspace(2, 1, 16), out, lse,
                           SCALE, False, 0, False, 0, False), test_utils=checks)
    torch.library.opcheck(torch.ops.etap.plan.default, (kv.seqlens, plan, kv.block_table, 1, 16, 1, 64, False, 0),
                          test_utils=checks)
    o_states = torch.randn(2, 8, 512, device="cuda")
    torch.library.opcheck(torch.ops.etap.merge_states.default,
                          (o_states, torch.randn(2, 8, device="cuda"), torch.empty(8, 512, device="cuda"),
                           torch.empty(8, device="cuda"), 0), test_utils=checks)


def test_two_streams_at_once(device):
    """Two problems decoded concurrently on two streams, each with its own buffers (and its own sched_meta in
    the FlashMLA form), give exactly their one-stream results."""
    a = StaticInputs(16, 1, 16, 8192, seed=100)
    b = StaticInputs(4, 2, 32, 2048, seed=200)
    a.refill([8192 - 37 * i for i in range(16)])
    b.refill([2048, 1, 0, 777])

    def native(inputs, out, lse, plan, workspace):
        etap.plan(inputs.kv.seqlens, inputs.s_q, inputs.h_q, out=plan)
        etap.decode(inputs.q, inputs.kv.k_cache, inputs.kv.block_table, inputs.kv.seqlens, plan, softmax_scale=SCALE,
                    causal=True, out=out, lse=lse, workspace=workspace)

    def buffers(inputs, copies):
        return [(torch.empty(inputs.b, inputs.s_q, inputs.h_q, 512, dtype=torch.bfloat16, device="cuda"),
                 torch.empty(inputs.b, inputs.h_q, inputs.s_q, device="cuda"),
                 etap.empty_plan(inputs.b, inputs.s_q, inputs.h_q),
                 etap.empty_workspace(inputs.b, inputs.s_q, inputs.h_q)) for _ in range(copies)]

    rounds = 10
    a_buffers, b_buffers = buffers(a, rounds), buffers(b, rounds)
    native(a, *a_buffers[0])
    native(b, *b_buffers[0])
    torch.cuda.synchronize()
    expected_a = [t.clone() for t in a_buffers[0][:2]]
    expected_b = [t.clone() for t in b_buffers[0][:2]]
    mla_data.check_out_lse(*expected_a, *a.reference(True))
    mla_data.check_out_lse(*expected_b, *b.reference(True))

    streams = torch.cuda.Stream(), torch.cuda.Stream()
    for s in streams:
        s.wait_stream(torch.cuda.current_stream())
    flash_results = []
    for i in range(rounds):
        with torch.cuda.stream(streams[0]):
            native(a, *a_buffers[i])
            meta, _ = flash_mla.get_mla_metadata()
            flash_results.append(("a", flash_mla.flash_mla_with_kvcache(
                a.q, a.kv.k_cache, a.kv.block_table, a.kv.seqlens, 512, meta, None, SCALE, True)))
        with torch.cuda.stream(streams[1]):
            native(b, *b_buffers[i])
            meta, _ = flash_mla.get_mla_metadata()
            flash_results.append(("b", flash_mla.flash_mla_with_kvcache(
                b.q, b.kv.k_cache, b.kv.block_table, b.kv.seqlens, 512, meta, None, SCALE, True)))
    torch.cuda.synchronize()
    for i in range(rounds):
        assert torch.equal(a_buffers[i][0], expected_a[0]) and torch.equal(a_buffers[i][1], expected_a[1]), i
        assert torch.equal(b_buffers[i][0], expected_b[0]) and torch.equal(b_buffers[i][1], expected_b[1]), i
    for which, (out, lse) in flash_results:
        expected = expected_a if which == "a" else expected_b
        assert torch.equal(out, expected[0]) and torch.equal(lse, expected[1]), which
