"""Every error path, raised inside a PyTorch process with a live CUDA context: the right exception class, the
library's message (or the torch layer's, for what the library cannot see), and a healthy context afterwards.

A crash (the SIGSEGV reported for libetap's error path under PyTorch) would kill pytest itself, so the same
paths also run first in a fresh subprocess, where a signal shows up as a failed test with its number.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

import etap  # noqa: E402
import etap.flash_mla as flash_mla  # noqa: E402
import etap.flash_mla_legacy as flash_mla_legacy  # noqa: E402
import mla_data  # noqa: E402

pytestmark = pytest.mark.torch
SCALE = 0.1352


class Call:
    """A valid decode call (b = 2, s_q = 1, h_q = 16); each error case breaks one thing."""

    def __init__(self):
        self.kv = mla_data.make_paged_kv(2, 300, varlen=False, seed=11)
        self.q = mla_data.make_q(2, 1, 16, seed=12)
        self.k_cache = self.kv.k_cache
        self.block_table = self.kv.block_table
        self.seqlens = self.kv.seqlens
        self.plan = etap.plan(self.seqlens, 1, 16)
        self.workspace = etap.empty_workspace(2, 1, 16)
        self.out = torch.empty(2, 1, 16, 512, dtype=torch.bfloat16, device="cuda")
        self.lse = torch.empty(2, 16, 1, device="cuda")
        self.softmax_scale = SCALE
        self.lse_base = "e"
        self.checked = False

    def decode(self):
        return etap.decode(self.q, self.k_cache, self.block_table, self.seqlens, self.plan,
                           softmax_scale=self.softmax_scale, out=self.out, lse=self.lse, workspace=self.workspace,
                           lse_base=self.lse_base, checked=self.checked)


def breaking(**changes):
    def run():
        call = Call()
        for name, change in changes.items():
            setattr(call, name, change(call) if callable(change) else change)
        return call.decode()
    return run


def strided_cache(width, columns=576):
    def make(call):
        wide = torch.zeros(call.k_cache.shape[0], 64, width, dtype=torch.bfloat16, device="cuda")
        return wide[..., :columns].unsqueeze(-2)
    return make


def misaligned_q(call):
    storage = torch.zeros(2 * 16 * 576 + 1, dtype=torch.bfloat16, device="cuda")
    return storage[1:].view(2, 1, 16, 576)


DECODE_ERRORS = [
    ("q fp32", breaking(q=lambda c: c.q.float(), out=lambda c: c.out.float()), etap.UnsupportedError,
     r"q_dtype fp32 is not supported; supported: bf16, fp16"),
    ("q fp64", breaking(q=lambda c: c.q.double()), etap.InvalidArgumentError, r"q has dtype torch\.float64"),
    ("kv fp16", breaking(k_cache=lambda c: c.k_cache.half()), etap.InvalidArgumentError,
     r"kv_dtype \(fp16\) must equal q_dtype \(bf16\)"),
    ("out fp16", breaking(out=lambda c: c.out.half()), etap.InvalidArgumentError,
     r"out_dtype \(fp16\) must equal q_dtype \(bf16\)"),
    ("q on cpu", breaking(q=lambda c: c.q.cpu()), etap.InvalidArgumentError, r"^q is on the CPU"),
    ("kv on cpu", breaking(k_cache=lambda c: c.k_cache.cpu()), etap.InvalidArgumentError,
     r"^k_cache is on the CPU; etap needs every tensor of a call on the query's CUDA device cuda:0"),
    ("block table on cpu", breaking(block_table=lambda c: c.block_table.cpu()), etap.InvalidArgumentError,
     r"^block_table is on the CPU"),
    ("seqlens on cpu", breaking(seqlens=lambda c: c.seqlens.cpu()), etap.InvalidArgumentError,
     r"^cache_seqlens is on the CPU"),
    ("out on cpu", breaking(out=lambda c: c.out.cpu()), etap.InvalidArgumentError, r"^out is on the CPU"),
    ("lse on cpu", breaking(lse=lambda c: c.lse.cpu()), etap.InvalidArgumentError, r"^lse is on the CPU"),
    ("plan on cpu", breaking(plan=lambda c: c.plan.cpu()), etap.InvalidArgumentError, r"^plan is on the CPU"),
    ("workspace on cpu", breaking(workspace=lambda c: c.workspace.cpu()), etap.InvalidArgumentError,
     r"^workspace is on the CPU"),
    ("block table int64", breaking(block_table=lambda c: c.block_table.long()), etap.InvalidArgumentError,
     r"block_table must be torch\.int32"),
    ("seqlens int64", breaking(seqlens=lambda c: c.seqlens.long()), etap.InvalidArgumentError,
     r"cache_seqlens must be torch\.int32"),
    ("lse fp16", breaking(lse=lambda c: c.lse.half()), etap.InvalidArgumentError, r"lse must be torch\.float32"),
    ("q 3-D", breaking(q=lambda c: c.q[:, 0]), etap.InvalidArgumentError, r"q must be 4-D"),
    ("kv 3-D", breaking(k_cache=lambda c: c.k_cache[:, :, 0]), etap.InvalidArgumentError, r"k_cache must be 4-D"),
    ("kv width", breaking(k_cache=lambda c: c.k_cache[..., :512]), etap.InvalidArgumentError,
     r"k_cache's last dimension \(512\) must equal q's head dim \(576\)"),
    ("head dim 128", breaking(q=lambda c: c.q[..., :128].contiguous(), k_cache=lambda c: c.k_cache[..., :128],
                              out=lambda c: c.out[..., :128].contiguous()),
     etap.UnsupportedError, r"head dims d_qk=128/d_v=128 are not supported; supported: 576/512, 512/512 and 320/256"),
    ("d_v 256 of d_qk 576", breaking(out=lambda c: c.out[..., :256].contiguous()), etap.UnsupportedError,
     r"head dims d_qk=576/d_v=256 are not supported; supported: 576/512, 512/512 and 320/256"),
    ("h_kv 3 of 16 heads", breaking(k_cache=lambda c: c.k_cache[:15].reshape(5, 64, 3, 576)),
     etap.InvalidArgumentError, r"h_q \(16\) must be divisible by h_kv \(3\)"),
    ("fp8 dense cache", breaking(k_cache=lambda c: c.k_cache.to(torch.float8_e4m3fn)), etap.InvalidArgumentError,
     r"kv_dtype fp8_e4m3 needs an FP8 kv_format"),
    ("rows 4224", breaking(q=lambda c: mla_data.make_q(2, 33, 128), out=None, lse=None, workspace=None),
     etap.UnsupportedError, r"s_q·h_q = 4224 query rows per request; this build supports up to 4096"),
    ("kv last dim strided", breaking(k_cache=lambda c: strided_cache(1152, 1152)(c)[..., ::2]),
     etap.InvalidArgumentError, r"k_cache must have a contiguous last dimension"),
    ("kv token stride 580", breaking(k_cache=strided_cache(580)), etap.InvalidArgumentError,
     r"kv_token_stride = 580 is not a multiple of 8 elements \(16 bytes\): TMA needs every row 16-byte aligned"),
    ("q misaligned", breaking(q=misaligned_q), etap.InvalidArgumentError, r"q must be 16-byte aligned for TMA"),
    ("block table batch", breaking(block_table=lambda c: c.block_table[:1]), etap.InvalidArgumentError,
     r"block_table must have shape \[2\] in its first dimension"),
    ("seqlens batch", breaking(seqlens=lambda c: c.seqlens[:1]), etap.InvalidArgumentError,
     r"cache_seqlens must have shape \[2\]"),
    ("out shape", breaking(out=lambda c: c.out[:, :, :8]), etap.InvalidArgumentError,
     r"out must have shape \[2, 1, 16\] in its first three dimensions"),
    ("lse shape", breaking(lse=lambda c: c.lse.transpose(1, 2)), etap.InvalidArgumentError,
     r"lse must have shape \[2, 16, 1\]"),
    ("workspace small", breaking(workspace=lambda c: c.workspace[:64]), etap.WorkspaceTooSmallError,
     r"workspace is 64 bytes; this problem needs \d+ \(etap::workspace_bytes\)"),
    ("plan small", breaking(plan=lambda c: c.plan[:2]), etap.WorkspaceTooSmallError,
     r"plan buffer is 8 bytes; this problem needs \d+"),
    ("plan strided", breaking(plan=lambda c: torch.zeros(2 * c.plan.numel(), dtype=torch.int32,
                                                         device="cuda")[::2]),
     etap.InvalidArgumentError, r"plan must be a contiguous tensor"),
    ("scale", breaking(softmax_scale=-1.0), etap.InvalidArgumentError,
     r"softmax_scale must be a finite positive number; got -1"),
    ("lse base", breaking(lse_base="10"), etap.InvalidArgumentError, r"lse_base must be 'e'"),
    ("empty batch", breaking(q=lambda c: c.q[:0], block_table=lambda c: c.block_table[:0],
                             seqlens=lambda c: c.seqlens[:0], out=lambda c: c.out[:0], lse=lambda c: c.lse[:0]),
     etap.InvalidArgumentError, r"batch must be at least 1; got 0"),
]


def bad_page_id(call):
    table = call.block_table.clone()
    table[1, 2] = 10**6
    return table


CHECKED_ERRORS = [
    ("page id out of range", breaking(checked=True, block_table=bad_page_id), etap.CheckFailedError,
     r"checked mode: request 1 uses page id 1000000 at block_table\[1\]\[2\]; the cache has \d+ pages"),
    ("seqlen past the table", breaking(checked=True, seqlens=lambda c: c.seqlens + 10**5), etap.CheckFailedError,
     r"checked mode: request 0 has seqlen 100300 but its block-table row holds \d+ pages"),
    ("negative seqlen", breaking(checked=True, seqlens=lambda c: c.seqlens - 1000), etap.CheckFailedError,
     r"checked mode: request 0 has seqlen -700; seqlens must not be negative"),
]


def fp8_v32_cache(call):
    """A uint8 cache of DeepSeek-V3.2's 656-byte tokens, the pages and page size of the call's cache."""
    num_pages, page_size, h_kv, _ = call.k_cache.shape
    return torch.zeros(num_pages, page_size, h_kv, 656, dtype=torch.uint8, device="cuda")


def flash_mla_new(**changes):
    def run():
        call = Call()
        args = dict(q=call.q, k_cache=call.k_cache, block_table=call.block_table, cache_seqlens=call.seqlens,
                    head_dim_v=512, tile_scheduler_metadata=flash_mla.get_mla_metadata()[0], softmax_scale=SCALE,
                    causal=True)
        args.update({k: (v(call) if callable(v) else v) for k, v in changes.items()})
        return flash_mla.flash_mla_with_kvcache(**args)
    return run


def reused_with_other_batch():
    call = Call()
    meta, _ = flash_mla.get_mla_metadata()
    flash_mla.flash_mla_with_kvcache(call.q, call.k_cache, call.block_table, call.seqlens, 512, meta, None, SCALE)
    flash_mla.flash_mla_with_kvcache(call.q[:1], call.k_cache, call.block_table[:1], call.seqlens[:1], 512, meta,
                                     None, SCALE)


def preset_flashmla_metadata():
    meta, _ = flash_mla.get_mla_metadata()
    meta.tile_scheduler_metadata = torch.zeros(132, 8, dtype=torch.int32, device="cuda")
    return flash_mla_new(tile_scheduler_metadata=meta)()


def legacy(num_splits=lambda c, s: s, seqlens=lambda c: c.seqlens, rows=16, h_kv=1):
    def run():
        call = Call()
        metadata, splits = flash_mla_legacy.get_mla_metadata(seqlens(call), rows, h_kv)
        return flash_mla_legacy.flash_mla_with_kvcache(call.q, call.k_cache, call.block_table, call.seqlens, 512,
                                                       metadata, num_splits(call, splits), SCALE, False)
    return run


FLASH_MLA_ERRORS = [
    # FP8 caches (issue 11): valid ones run (test_fp8.py); these are the inconsistent calls.
    ("fp8 cache without a scale", flash_mla_new(is_fp8_kvcache=True,
                                                k_cache=lambda c: c.k_cache.view(torch.uint8)[..., :576]),
     etap.InvalidArgumentError, r"descale_k is None: an FP8 cache of 576 e4m3 bytes per token needs its fp32 scale"),
    ("fp8 cache without the flag", flash_mla_new(k_cache=lambda c: c.k_cache.to(torch.float8_e4m3fn)),
     etap.InvalidArgumentError, r"k_cache holds bytes .*an FP8 cache; pass is_fp8_kvcache=True"),
    ("fp8 flag on a bf16 cache", flash_mla_new(is_fp8_kvcache=True), etap.InvalidArgumentError,
     r"is_fp8_kvcache=True needs a k_cache of torch.uint8 or torch.float8_e4m3fn bytes"),
    ("fp8 cache of 600 bytes", flash_mla_new(is_fp8_kvcache=True,
                                             k_cache=lambda c: c.k_cache.view(torch.uint8)[..., :600]),
     etap.InvalidArgumentError, r"k_cache's last dimension is 600, neither q's head dim \(576\) nor 656"),
    ("fp8 v32 with descale_k", flash_mla_new(is_fp8_kvcache=True, k_cache=fp8_v32_cache,
                                             descale_k=lambda c: torch.ones(1, device="cuda")),
     etap.InvalidArgumentError, r"descale_k must be None for a 656-byte \(DeepSeek-V3.2\) FP8 cache"),
    ("descale_k of a bf16 cache", flash_mla_new(descale_k=lambda c: torch.ones(1, device="cuda")),
     etap.InvalidArgumentError, r"descale_k is given but is_fp8_kvcache is False"),
    ("sparse", flash_mla_new(indices=lambda c: torch.zeros(2, 1, 64, dtype=torch.int32, device="cuda")),
     etap.UnsupportedError, r"sparse attention \(indices, topk_length\) is not supported by etap"),
    ("attn sink", flash_mla_new(attn_sink=lambda c: torch.zeros(16, device="cuda")), etap.UnsupportedError,
     r"attn_sink is not supported by etap yet"),
    ("extra cache", flash_mla_new(extra_k_cache=lambda c: c.k_cache), etap.UnsupportedError,
     r"extra_k_cache / extra_indices_in_kvcache / extra_topk_length"),
    ("no block table", flash_mla_new(block_table=None), etap.InvalidArgumentError,
     r"block_table and cache_seqlens are required for dense decode"),
    ("num_splits with sched_meta", flash_mla_new(num_splits=lambda c: torch.zeros(3, dtype=torch.int32)),
     etap.InvalidArgumentError, r"num_splits must be None with a FlashMLASchedMeta"),
    ("metadata type", flash_mla_new(tile_scheduler_metadata=object()), etap.InvalidArgumentError,
     r"tile_scheduler_metadata must be the FlashMLASchedMeta"),
    ("sched_meta reused", reused_with_other_batch, etap.InvalidArgumentError,
     r"this call does not match the one that initialised the sched_meta \(b 2 -> 1\)"),
    ("preset FlashMLA metadata", preset_flashmla_metadata, etap.UnsupportedError,
     r"carries FlashMLA-format tile_scheduler_metadata"),
    ("new form rows 4224", flash_mla_new(q=lambda c: mla_data.make_q(2, 33, 128)), etap.UnsupportedError,
     r"s_q·h_q = 4224 query rows per request"),
    ("new form cpu seqlens", flash_mla_new(cache_seqlens=lambda c: c.seqlens.cpu()), etap.InvalidArgumentError,
     r"cache_seqlens is on the CPU"),
    ("legacy num_splits length", legacy(num_splits=lambda c, s: s[:2]), etap.InvalidArgumentError,
     r"num_splits has shape \[2\], so the metadata is not for this batch of 2 \(expected \[3\]\)"),
    ("legacy num_splits None", legacy(num_splits=lambda c, s: None), etap.InvalidArgumentError,
     r"num_splits must be the tensor that etap.flash_mla_legacy.get_mla_metadata returned"),
    ("legacy cpu seqlens", legacy(seqlens=lambda c: c.seqlens.cpu()), etap.InvalidArgumentError,
     r"cache_seqlens is on the CPU"),
    ("legacy int64 seqlens", legacy(seqlens=lambda c: c.seqlens.long()), etap.InvalidArgumentError,
     r"cache_seqlens must be torch\.int32"),
    ("legacy rows 4224", legacy(rows=4224), etap.UnsupportedError, r"s_q·h_q = 4224 query rows per request"),
]


def merge(**changes):
    def run():
        args = dict(o_states=torch.zeros(2, 8, 512, device="cuda"), lse_states=torch.zeros(2, 8, device="cuda"))
        args.update(changes)
        return etap.merge_states(**args)
    return run


MERGE_ERRORS = [
    ("merge dim", merge(o_states=torch.zeros(2, 8, 6, device="cuda")), etap.InvalidArgumentError,
     r"merge_states: dim must be a positive multiple of 4; got 6"),
    ("merge fp16 states", merge(o_states=torch.zeros(2, 8, 512, device="cuda").half()), etap.InvalidArgumentError,
     r"o_states must be torch\.float32"),
    ("merge cpu", merge(o_states=torch.zeros(2, 8, 512)), etap.InvalidArgumentError, r"o_states is on the CPU"),
    ("merge lse shape", merge(lse_states=torch.zeros(2, 7, device="cuda")), etap.InvalidArgumentError,
     r"lse_states must have shape \[2, 8\]"),
    ("merge out dtype", merge(out=torch.zeros(8, 512, dtype=torch.float64, device="cuda")), etap.InvalidArgumentError,
     r"out has dtype torch\.float64"),
]

ALL_ERRORS = DECODE_ERRORS + CHECKED_ERRORS + FLASH_MLA_ERRORS + MERGE_ERRORS


@pytest.fixture(scope="module")
def live_context(device):
    torch.zeros(1, device="cuda")
    return device


@pytest.mark.parametrize("name,run,error,message", ALL_ERRORS, ids=[case[0] for case in ALL_ERRORS])
def test_error(live_context, name, run, error, message):
    with pytest.raises(error, match=message):
        run()
    torch.cuda.synchronize()  # no sticky CUDA error left behind


def test_the_context_is_healthy_after_every_error(live_context):
    for _, run, error, _ in ALL_ERRORS:
        with pytest.raises(error):
            run()
    call = Call()
    out, lse = call.decode()
    ref_out, ref_lse = mla_data.reference(call.q, call.kv, SCALE, False)
    mla_data.check_out_lse(out, lse, ref_out, ref_lse)


def test_checked_mode_refuses_graph_capture(live_context):
    call = Call()
    call.checked = True
    call.decode()  # eager: fine
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(etap.InvalidArgumentError, match="checked mode synchronises the stream and cannot run "
                                                        "during CUDA graph capture"):
        with torch.cuda.graph(graph):
            call.decode()
    torch.cuda.synchronize()


def test_tensors_on_two_devices(live_context):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    call = Call()
    call.block_table = call.block_table.to("cuda:1")
    with pytest.raises(etap.InvalidArgumentError, match="block_table is on cuda:1; etap needs every tensor"):
        call.decode()


CANARY = textwrap.dedent("""
    import sys
    import torch
    torch.zeros(1, device="cuda")
    sys.path.insert(0, {tests!r})
    import test_errors
    failures = 0
    for name, run, error, message in test_errors.ALL_ERRORS:
        try:
            run()
            print("no error:", name); failures += 1
        except error:
            pass
    torch.cuda.synchronize()
    print("canary done", failures)
    sys.exit(1 if failures else 0)
""")


def test_error_paths_in_a_fresh_torch_process_do_not_crash(live_context):
    script = CANARY.format(tests=os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (f"exit {result.returncode} (a negative value is the signal that killed it)\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    assert "canary done 0" in result.stdout


REPRO = textwrap.dedent("""
    import ctypes, sys
    import torch
    torch.zeros(1, device="cuda")
    lib = ctypes.CDLL(sys.argv[1])
    class Problem(ctypes.Structure):
        _fields_ = [(n, ctypes.c_int32) for n in ("batch", "s_q", "h_q", "h_kv", "d_qk", "d_v", "page_size",
                    "num_pages", "max_pages_per_seq", "q_dtype", "kv_dtype", "out_dtype", "kv_format")]
    class Options(ctypes.Structure):
        _fields_ = [("num_sms", ctypes.c_int32), ("checked", ctypes.c_int32)]
    lib.etap_default_problem.restype = Problem
    lib.etap_plan_bytes.restype = ctypes.c_size_t
    lib.etap_plan_bytes.argtypes = [ctypes.POINTER(Problem), ctypes.POINTER(Options)]
    lib.etap_last_error.restype = ctypes.c_char_p
    p = lib.etap_default_problem()
    p.batch, p.s_q, p.h_q, p.num_pages, p.max_pages_per_seq = 16, 34, 128, 100, 16
    for options in (None, Options(132, 0)):
        size = lib.etap_plan_bytes(ctypes.byref(p), ctypes.byref(options) if options else None)
        print(size, lib.etap_last_error().decode())
""")


def test_issue_repro_ctypes_libetap_in_a_torch_process(live_context):
    """The reported crash: libetap.so through ctypes after CUDA init in PyTorch, on a refused problem. Runs
    when ETAP_LIBRARY names a shared libetap (tools/device-check.sh sets it when the tree has one)."""
    library = os.environ.get("ETAP_LIBRARY")
    if not library or not os.path.exists(library):
        pytest.skip("set ETAP_LIBRARY to a libetap.so (e.g. build/src/libetap.so) to run the ctypes repro")
    result = subprocess.run([sys.executable, "-c", REPRO, library], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("0 s_q·h_q = 4352 query rows per request") for line in lines), \
        result.stdout
