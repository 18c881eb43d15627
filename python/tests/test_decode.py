"""etap against an fp32 PyTorch reference over FlashMLA's dense-decode sweep, through all three entry points:
FlashMLA's newer interface (sched_meta), its older one (tensors from get_mla_metadata) and etap's native call.

The first is checked against the reference with FlashMLA's tolerances; the other two must give the same bits
(the same plan on the same inputs: the kernel is deterministic). The sweep is FlashMLA's own grid
(tests/test_flash_mla_dense_decoding.py: b, s_q, s_k, h_q and h_kv, fixed and variable lengths, causal or
not) with h_q 16 and 32 added, then what etap takes beyond FlashMLA: page sizes other than 64, head dims
512/512 and 320/256, s_q up to 16, fp16. Problems of more than 4096 query rows per request must raise the
library's 'unsupported' error.
"""

from __future__ import annotations

import dataclasses
import math
import zlib

import pytest

torch = pytest.importorskip("torch")

import etap  # noqa: E402
import etap.flash_mla as flash_mla  # noqa: E402
import etap.flash_mla_legacy as flash_mla_legacy  # noqa: E402
import mla_data  # noqa: E402

pytestmark = pytest.mark.torch
MAX_REQUEST_ROWS = 4096  # s_q·h_q: the library's limit
DEEPSEEK_SCALE = 0.1352337788608801  # 1/sqrt(192) · mscale²: what engines pass


@dataclasses.dataclass(frozen=True)
class Case:
    b: int
    s_q: int
    s_k: int
    h_q: int
    varlen: bool
    causal: bool
    zero_lengths: bool = False
    dtype: str = "bf16"
    h_kv: int = 1
    page_size: int = 64
    d_qk: int = 576
    d_v: int = 512

    @property
    def rows(self) -> int:
        return self.s_q * self.h_q

    def kv_key(self):
        return (self.b, self.s_k, self.varlen, self.zero_lengths, self.dtype, self.h_kv, self.page_size, self.d_qk)

    def __str__(self):
        extra = ("-zeros" if self.zero_lengths else "") + ("" if self.dtype == "bf16" else f"-{self.dtype}")
        extra += f"-kv{self.h_kv}" if self.h_kv != 1 else ""
        extra += f"-page{self.page_size}" if self.page_size != 64 else ""
        extra += f"-d{self.d_qk}x{self.d_v}" if (self.d_qk, self.d_v) != (576, 512) else ""
        return (f"b{self.b}-sq{self.s_q}-sk{self.s_k}-hq{self.h_q}-{'var' if self.varlen else 'fix'}"
                f"-{'causal' if self.causal else 'full'}{extra}")


# FlashMLA's grid of (h_q, h_kv), plus the TP4/TP8 head counts 16 and 32.
HEADS = [(h_q, h_kv) for h_kv in (1, 2, 3, 8) for h_q in (1, 3, 9, 16, 32, 63, 64, 126, 128) if h_q % h_kv == 0]
# FlashMLA's sweep, the KV data outermost so that consecutive cases share it.
SWEEP = [Case(b, s_q, s_k, h_q, varlen, causal, h_kv=h_kv)
         for b in (1, 2, 6, 64) for s_k in (20, 140, 4096) for varlen in (False, True)
         for h_kv in (1, 2, 3, 8) for s_q in (1, 2, 4) for h_q, heads_kv in HEADS if heads_kv == h_kv
         for causal in (False, True)]
# FlashMLA's corner cases (half the requests empty).
CORNERS = [Case(128, s_q, 4096, h_q, True, causal, zero_lengths=True, h_kv=h_kv)
           for h_kv in (1, 2, 3, 8) for s_q in (1, 2) for h_q, heads_kv in HEADS if heads_kv == h_kv
           for causal in (False, True)]
# Beyond FlashMLA: deep MTP, pages of 1 (SGLang), 16 (vLLM), 48 (not a multiple of 64 or 32), 128, 256; head
# dims 512/512 (no RoPE) and 320/256; fp16.
MTP = [Case(b, 16, s_k, h_q, True, True, h_kv=h_kv) for b, s_k in ((4, 4096), (16, 140))
       for h_q, h_kv in ((16, 1), (32, 2), (128, 1))]
# Shapes whose rows split into more 64-row tiles as s_q tokens of h_q heads than as one token of s_q·h_q
# heads (what the older form's metadata knows): the older form must plan them afresh (FlashMLA's grid has
# one, h_q = 126, h_kv = 3, s_q = 4).
RETILED = [Case(16, 3, 4096, 40, True, True), Case(2, 2, 140, 96, False, True),
           Case(6, 4, 1000, 84, True, False, h_kv=2)]
PAGES = [Case(b, s_q, s_k, h_q, True, True, h_kv=h_kv, page_size=page)
         for page in (1, 16, 48, 128, 256) for b, s_k in ((2, 140), (16, 4096))
         for s_q, h_q, h_kv in ((1, 16, 1), (2, 64, 1), (1, 128, 1), (2, 32, 2))]
DIMS = [Case(b, s_q, s_k, h_q, True, True, h_kv=h_kv, page_size=page, d_qk=d_qk, d_v=d_v)
        for d_qk, d_v in ((512, 512), (320, 256)) for b, s_k, page in ((2, 140, 64), (64, 4096, 64), (6, 1000, 16))
        for s_q, h_q, h_kv in ((1, 16, 1), (2, 64, 1), (1, 128, 1), (4, 9, 1), (2, 32, 2))]
FP16 = [Case(b, s_q, s_k, h_q, True, True, dtype="fp16", h_kv=h_kv, page_size=page, d_qk=d_qk, d_v=d_v)
        for b, s_k in ((2, 140), (64, 4096))
        for s_q, h_q, h_kv, page, d_qk, d_v in ((1, 16, 1, 64, 576, 512), (2, 32, 1, 64, 576, 512),
                                                 (1, 64, 1, 64, 576, 512), (2, 128, 1, 64, 576, 512),
                                                 (1, 32, 2, 1, 576, 512), (2, 16, 1, 16, 320, 256))]

_kv_cache = {}


def paged_kv(case: Case):
    """The case's KV data, shared with the neighbouring cases (one set held at a time)."""
    key = case.kv_key()
    if key not in _kv_cache:
        _kv_cache.clear()
        torch.cuda.empty_cache()
        dtype = torch.bfloat16 if case.dtype == "bf16" else torch.float16
        _kv_cache[key] = mla_data.make_paged_kv(case.b, case.s_k, varlen=case.varlen, zero_lengths=case.zero_lengths,
                                                min_len=4, dtype=dtype, strided=case.varlen,
                                                seed=zlib.crc32(repr(key).encode()) % 1000,
                                                page_size=case.page_size, h_kv=case.h_kv, d_qk=case.d_qk)
    return _kv_cache[key]


def too_many_rows(rows: int) -> str:
    return rf"s_q·h_q = {rows} query rows per request; this build supports up to {MAX_REQUEST_ROWS}"


def run_three_ways(case: Case, q, kv, scale):
    """(out, lse) of the newer FlashMLA form (two 'layers' on one sched_meta), the older form and the native
    call (into NaN-poisoned out/lse); raises what the library raises."""
    d_v = case.d_v
    sched_meta, _ = flash_mla.get_mla_metadata()
    new = flash_mla.flash_mla_with_kvcache(q, kv.k_cache, kv.block_table, kv.seqlens, d_v, sched_meta, None,
                                           softmax_scale=scale, causal=case.causal)
    second_layer = flash_mla.flash_mla_with_kvcache(q, kv.k_cache, kv.block_table, kv.seqlens, d_v, sched_meta,
                                                    None, softmax_scale=scale, causal=case.causal)
    metadata, num_splits = flash_mla_legacy.get_mla_metadata(kv.seqlens, case.s_q * case.h_q // case.h_kv,
                                                             case.h_kv)
    legacy = flash_mla_legacy.flash_mla_with_kvcache(q, kv.k_cache, kv.block_table, kv.seqlens, d_v, metadata,
                                                     num_splits, scale, case.causal)
    plan = etap.plan(kv.seqlens, case.s_q, case.h_q, h_kv=case.h_kv, page_size=case.page_size,
                     block_table=kv.block_table)
    out = torch.full((case.b, case.s_q, case.h_q, d_v), float("nan"), dtype=q.dtype, device=q.device)
    lse = torch.full((case.b, case.h_q, case.s_q), float("nan"), device=q.device)
    native_scale = scale if scale is not None else q.shape[-1] ** -0.5  # the native call has no default
    native = etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=native_scale,
                         causal=case.causal, out=out, lse=lse)
    assert native[0] is out and native[1] is lse
    return new, second_layer, legacy, native


@pytest.mark.parametrize("case", SWEEP + CORNERS + MTP + RETILED + PAGES + DIMS + FP16, ids=str)
def test_against_reference(device, case: Case):
    assert case.rows <= MAX_REQUEST_ROWS
    kv = paged_kv(case)
    dtype = torch.bfloat16 if case.dtype == "bf16" else torch.float16
    q = mla_data.make_q(case.b, case.s_q, case.h_q, dtype=dtype, seed=case.rows + case.b, d_qk=case.d_qk)
    scale = None if case.h_q % 2 else DEEPSEEK_SCALE  # None: FlashMLA's default 1/sqrt(d_qk)
    new, second_layer, legacy, native = run_three_ways(case, q, kv, scale)
    ref_out, ref_lse = mla_data.reference(q, kv, scale if scale is not None else case.d_qk ** -0.5, case.causal,
                                          d_v=case.d_v)
    mla_data.check_out_lse(*new, ref_out, ref_lse)
    for name, (out, lse) in (("second layer", second_layer), ("legacy form", legacy), ("native call", native)):
        assert torch.equal(out, new[0]) and torch.equal(lse, new[1]), f"{name} differs from the first call"
    assert new[0].shape == (case.b, case.s_q, case.h_q, case.d_v) and new[0].dtype == q.dtype
    assert new[1].shape == (case.b, case.h_q, case.s_q) and new[1].dtype == torch.float32


@pytest.mark.parametrize("s_q,h_q", [(33, 128), (2, 4096), (4097, 1)])
def test_more_than_4096_rows_per_request_are_refused(device, s_q, h_q):
    kv = mla_data.make_paged_kv(2, 300, varlen=False, seed=2)
    q = torch.zeros(2, s_q, h_q, 576, dtype=torch.bfloat16, device="cuda")
    message = too_many_rows(s_q * h_q)
    for form in (lambda: flash_mla.flash_mla_with_kvcache(q, kv.k_cache, kv.block_table, kv.seqlens, 512,
                                                          flash_mla.get_mla_metadata()[0], None, DEEPSEEK_SCALE,
                                                          True),
                 lambda: flash_mla_legacy.get_mla_metadata(kv.seqlens, s_q * h_q, 1),
                 lambda: etap.plan(kv.seqlens, s_q, h_q)):
        with pytest.raises(etap.UnsupportedError, match=message):
            form()


def test_empty_requests_give_zero_and_plus_infinity(device):
    """FlashMLA's convention, which etap shares: a request of length 0 (or a causal query token that sees no
    key) has out = 0 exactly and lse = +inf."""
    kv = mla_data.make_paged_kv(8, 200, varlen=False, seed=3)
    kv.seqlens.copy_(torch.tensor([0, 200, 0, 1, 2, 0, 64, 0], dtype=torch.int32))
    q = mla_data.make_q(8, 4, 16, seed=4)
    meta, _ = flash_mla.get_mla_metadata()
    out, lse = flash_mla.flash_mla_with_kvcache(q, kv.k_cache, kv.block_table, kv.seqlens, 512, meta, None,
                                                DEEPSEEK_SCALE, causal=True)
    for i in (0, 2, 5, 7):
        assert torch.count_nonzero(out[i]) == 0 and torch.isposinf(lse[i]).all()
    # seqlen 1 and 2 with s_q = 4, causal: query tokens 0..(3 - n) see nothing.
    assert torch.isposinf(lse[3, :, :3]).all() and torch.isfinite(lse[3, :, 3]).all()
    assert torch.isposinf(lse[4, :, :2]).all() and torch.isfinite(lse[4, :, 2:]).all()
    assert torch.count_nonzero(out[3, :3]) == 0
    ref_out, ref_lse = mla_data.reference(q, kv, DEEPSEEK_SCALE, True)
    mla_data.check_out_lse(out, lse, ref_out, ref_lse)


def test_base2_lse_is_the_natural_one_over_ln2(device):
    kv = mla_data.make_paged_kv(4, 1000, varlen=True, seed=5)
    q = mla_data.make_q(4, 1, 16, seed=6)
    plan = etap.plan(kv.seqlens, 1, 16)
    out_e, lse_e = etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=DEEPSEEK_SCALE)
    out_2, lse_2 = etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=DEEPSEEK_SCALE,
                               lse_base="2")
    assert torch.equal(out_e, out_2)
    torch.testing.assert_close(lse_2, lse_e / math.log(2.0), rtol=2e-6, atol=1e-6)


def test_deterministic(device):
    kv = mla_data.make_paged_kv(64, 4096, varlen=True, seed=7)
    q = mla_data.make_q(64, 2, 32, seed=8)
    runs = []
    for _ in range(2):
        meta, _ = flash_mla.get_mla_metadata()
        runs.append(flash_mla.flash_mla_with_kvcache(q, kv.k_cache, kv.block_table, kv.seqlens, 512, meta, None,
                                                     DEEPSEEK_SCALE, True))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_merge_states_of_two_halves_equals_the_whole(device):
    """Context parallelism: attention over two halves of the KV, merged by LSE, is attention over all of it."""
    kv = mla_data.make_paged_kv(4, 2048, varlen=False, seed=9)
    q = mla_data.make_q(4, 1, 16, seed=10)
    half = kv.block_table.shape[1] // 2
    plan = etap.plan(kv.seqlens, 1, 16)
    whole = etap.decode(q, kv.k_cache, kv.block_table, kv.seqlens, plan, softmax_scale=DEEPSEEK_SCALE)
    halves = []
    for table in (kv.block_table[:, :half], kv.block_table[:, half:]):
        table = table.contiguous()
        seqlens = torch.full_like(kv.seqlens, half * 64)
        halves.append(etap.decode(q, kv.k_cache, table, seqlens, etap.plan(seqlens, 1, 16),
                                  softmax_scale=DEEPSEEK_SCALE))
    o_states = torch.stack([h[0].float().reshape(-1, 512) for h in halves])  # rows (b, s_q=1, h)
    lse_states = torch.stack([h[1].reshape(-1) for h in halves])  # (b, h, s_q=1): same row order
    out, lse = etap.merge_states(o_states, lse_states, out_dtype=torch.bfloat16)
    ref_out, ref_lse = mla_data.reference(q, kv, DEEPSEEK_SCALE, False)
    mla_data.check_out_lse(whole[0], whole[1], ref_out, ref_lse)
    mla_data.check_out_lse(out.view(4, 1, 16, 512), lse.view(4, 16, 1), ref_out, ref_lse)
