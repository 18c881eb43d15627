"""etap._C without PyTorch: exceptions, buffer sizes, and every error the library reports before it touches
the device. Fake, aligned addresses stand in for buffers: no call here gets as far as a launch."""

from __future__ import annotations

import threading

import pytest

import etap
from etap import _C, _layout

NUM_SMS = 132
Q, KV, BT, SEQLENS, OUT, LSE, PLAN, WORKSPACE = (0x100000 * i for i in range(1, 9))


def has_device() -> bool:
    try:
        _C.check_device(0)
        return True
    except _C.NoDeviceError as error:
        return not str(error).startswith("no CUDA device found")


needs_no_device = pytest.mark.skipif(has_device(), reason="a CUDA device is present; this covers CPU-only machines")


def problem(batch=4, s_q=1, h_q=16, **fields):
    values = dict(zip(_layout.PROBLEM_FIELDS, _C.DEFAULT_PROBLEM))
    values.update(batch=batch, s_q=s_q, h_q=h_q, num_pages=100, max_pages_per_seq=16)
    values.update(fields)
    return tuple(values[name] for name in _layout.PROBLEM_FIELDS)


def dense_strides(p):
    batch, s_q, h_q, h_kv, d_qk, d_v, page_size, num_pages, max_pages = p[:9]
    return dict(q=(s_q * h_q * d_qk, h_q * d_qk, d_qk), kv=(page_size * h_kv * d_qk, h_kv * d_qk, d_qk),
                bt=max_pages, out=(s_q * h_q * d_v, h_q * d_v, d_v), lse=(h_q * s_q, s_q, 1))


def call_args(p, q=Q, kv=KV, scale=0.1352, causal=False, lse_base=_C.LSE_NATURAL, strides=None):
    s = dense_strides(p)
    s.update(strides or {})
    return (p, q, *s["q"], kv, *s["kv"], BT, s["bt"], SEQLENS, OUT, *s["out"], LSE, *s["lse"], scale, causal,
            lse_base)


def decode(p, plan_bytes=1 << 20, workspace_bytes=1 << 30, **kw):
    _C.decode(*call_args(p, **kw), PLAN, plan_bytes, WORKSPACE, workspace_bytes, 0, NUM_SMS, False)


def test_exceptions_are_etap_errors_and_the_builtin_of_their_policy():
    for name in ("InvalidArgumentError", "UnsupportedError", "WorkspaceTooSmallError", "CheckFailedError"):
        assert issubclass(getattr(etap, name), ValueError) and issubclass(getattr(etap, name), etap.Error)
    for name in ("NoDeviceError", "CudaError"):
        assert issubclass(getattr(etap, name), RuntimeError) and issubclass(getattr(etap, name), etap.Error)
    assert not issubclass(etap.UnsupportedError, RuntimeError)


def test_buffer_sizes_grow_with_the_batch_only_for_the_plan():
    plan_1, workspace_1 = _C.buffer_sizes(problem(batch=1), NUM_SMS)
    plan_2, workspace_2 = _C.buffer_sizes(problem(batch=2), NUM_SMS)
    assert plan_1 > 0 and workspace_1 > 0
    assert plan_2 - plan_1 == 16  # four int32 words per request (plan.hpp)
    assert workspace_1 == workspace_2  # the workspace depends on rows and SMs, not on the batch
    assert etap.plan_bytes(2, 1, 16, num_sms=NUM_SMS) == plan_2
    assert etap.workspace_bytes(2, 1, 16, num_sms=NUM_SMS) == workspace_2


TOO_MANY_ROWS = r"s_q·h_q = 8192 query rows per request; this build supports up to 4096"


def test_sizes_of_too_many_rows_raise_the_librarys_unsupported_message():
    with pytest.raises(etap.UnsupportedError, match=TOO_MANY_ROWS):
        _C.buffer_sizes(problem(s_q=2, h_q=4096), NUM_SMS)
    with pytest.raises(etap.UnsupportedError, match=r"s_q·h_q = 4224 query rows per request"):
        etap.plan_bytes(4, 33, 128, num_sms=NUM_SMS)


# Issue 10's shapes: more than 64 rows (row tiles), h_kv > 1, any page size, head dims 512/512 and 320/256.
COVERED = [dict(s_q=2, h_q=64), dict(h_q=128), dict(s_q=2, h_q=128), dict(s_q=16, h_q=16), dict(s_q=32, h_q=128),
           dict(h_q=16, h_kv=2), dict(h_q=126, h_kv=3), dict(h_q=128, h_kv=8), dict(page_size=1), dict(page_size=16),
           dict(page_size=48), dict(page_size=128), dict(page_size=256), dict(d_qk=512, d_v=512),
           dict(d_qk=320, d_v=256), dict(s_q=2, h_q=32, h_kv=2, page_size=1, d_qk=320, d_v=256, q_dtype=_C.DTYPE_FP16,
                                         kv_dtype=_C.DTYPE_FP16, out_dtype=_C.DTYPE_FP16)]


@pytest.mark.parametrize("fields", COVERED, ids=lambda f: "-".join(f"{k}{v}" for k, v in f.items()))
def test_sizes_and_validation_of_the_covered_shapes(fields):
    p = problem(**fields)
    plan_bytes, workspace_bytes = _C.buffer_sizes(p, NUM_SMS)
    assert plan_bytes > 0 and workspace_bytes > 0
    _C.validate(*call_args(p, causal=True))


def test_sizes_do_not_depend_on_the_page_size_and_follow_d_v():
    base = _C.buffer_sizes(problem(), NUM_SMS)
    for page_size in (1, 16, 48, 128, 256):
        assert _C.buffer_sizes(problem(page_size=page_size), NUM_SMS) == base
    assert _C.buffer_sizes(problem(d_qk=512, d_v=512), NUM_SMS) == base
    plan_256, workspace_256 = _C.buffer_sizes(problem(d_qk=320, d_v=256), NUM_SMS)
    assert plan_256 == base[0] and workspace_256 < base[1]  # partial results of d_v floats per row
    # The Python size functions pick d_qk from d_v.
    assert etap.workspace_bytes(4, 1, 16, d_v=256, num_sms=NUM_SMS) == workspace_256
    assert etap.plan_bytes(4, 1, 16, page_size=1, num_sms=NUM_SMS) == base[0]


def test_sizes_of_an_invalid_problem_raise_invalid_argument():
    with pytest.raises(etap.InvalidArgumentError, match=r"^batch must be at least 1; got 0"):
        etap.plan_bytes(0, 1, 16, num_sms=NUM_SMS)
    with pytest.raises(etap.InvalidArgumentError, match=r"h_q \(10\) must be divisible by h_kv \(3\)"):
        _C.buffer_sizes(problem(h_q=10, h_kv=3), NUM_SMS)


def test_sizes_of_unsupported_head_dims_and_dtypes():
    supported = "supported: 576/512, 512/512 and 320/256"
    with pytest.raises(etap.UnsupportedError, match=f"head dims d_qk=128/d_v=128 are not supported; {supported}"):
        etap.plan_bytes(4, 1, 16, d_qk=128, d_v=128, num_sms=NUM_SMS)
    with pytest.raises(etap.UnsupportedError, match=f"head dims d_qk=576/d_v=256 are not supported; {supported}"):
        etap.workspace_bytes(4, 1, 16, d_qk=576, d_v=256, num_sms=NUM_SMS)
    with pytest.raises(etap.UnsupportedError, match=f"head dims d_qk=128/d_v=128 are not supported; {supported}"):
        etap.workspace_bytes(4, 1, 16, d_v=128, num_sms=NUM_SMS)  # d_qk follows d_v where no pair is built
    with pytest.raises(etap.UnsupportedError, match="q_dtype fp32 is not supported"):
        etap.plan_bytes(4, 1, 16, dtype="fp32", num_sms=NUM_SMS)
    with pytest.raises(etap.InvalidArgumentError, match="kv_dtype fp8_e4m3 needs an FP8 kv_format"):
        _C.buffer_sizes(problem(kv_dtype=_C.DTYPE_FP8_E4M3), NUM_SMS)


@needs_no_device
def test_sizes_without_a_device_say_so():
    with pytest.raises(etap.NoDeviceError, match="cannot query the SM count"):
        etap.plan_bytes(4, 1, 16)


def test_problem_tuple_is_checked_by_the_binding():
    with pytest.raises(ValueError, match="problem must be a tuple of 13 ints; got 3"):
        _C.buffer_sizes((1, 2, 3), NUM_SMS)
    with pytest.raises(ValueError, match="does not fit in int32"):
        _C.buffer_sizes(problem(batch=2**31), NUM_SMS)


@pytest.mark.parametrize("page_size", [1, 16, 48, 64, 256])
def test_largest_max_pages_per_seq_matches_the_librarys_cost_line(page_size):
    for batch in (1, 7, 1000, 2**20):
        largest = _layout.largest_max_pages_per_seq(batch, page_size)
        _C.buffer_sizes(problem(batch=batch, page_size=page_size, max_pages_per_seq=largest), NUM_SMS)
        if largest == _layout.INT32_MAX:
            continue  # the cost line allows more pages than an int32 counts
        with pytest.raises(etap.UnsupportedError, match="must stay below 2"):
            _C.buffer_sizes(problem(batch=batch, page_size=page_size, max_pages_per_seq=largest + 1), NUM_SMS)


def test_validate_accepts_dense_arguments():
    _C.validate(*call_args(problem()))
    _C.validate(*call_args(problem(batch=3, s_q=2, h_q=32), causal=True))
    _C.validate(*call_args(problem(batch=3, s_q=16, h_q=128, h_kv=2, page_size=1, d_qk=320, d_v=256), causal=True))


def test_validate_reports_misaligned_and_bad_strides():
    with pytest.raises(etap.InvalidArgumentError, match="q must be 16-byte aligned for TMA; got address 0x100002"):
        _C.validate(*call_args(problem(), q=Q + 2))
    with pytest.raises(etap.InvalidArgumentError, match="kv_token_stride = 580 is not a multiple of 8 elements"):
        _C.validate(*call_args(problem(), strides={"kv": (64 * 580, 580, 576)}))
    with pytest.raises(etap.InvalidArgumentError, match="block_table_stride \\(8\\) must be at least "
                                                        "max_pages_per_seq \\(16\\)"):
        _C.validate(*call_args(problem(), strides={"bt": 8}))
    with pytest.raises(etap.InvalidArgumentError, match="softmax_scale must be a finite positive number"):
        _C.validate(*call_args(problem(), scale=float("nan")))
    with pytest.raises(etap.InvalidArgumentError, match="lse_base has the unknown value 7"):
        _C.validate(*call_args(problem(), lse_base=7))


def test_decode_reports_small_buffers_before_touching_the_device():
    p = problem()
    plan_bytes, workspace_bytes = _C.buffer_sizes(p, NUM_SMS)
    with pytest.raises(etap.WorkspaceTooSmallError, match=f"plan buffer is 8 bytes; this problem needs {plan_bytes}"):
        decode(p, plan_bytes=8)
    with pytest.raises(etap.WorkspaceTooSmallError,
                       match=f"workspace is 64 bytes; this problem needs {workspace_bytes} "
                             r"\(etap::workspace_bytes\)"):
        decode(p, workspace_bytes=64)
    with pytest.raises(etap.UnsupportedError, match=TOO_MANY_ROWS):
        decode(problem(s_q=2, h_q=4096))


@needs_no_device
def test_decode_and_plan_without_a_device_say_so():
    with pytest.raises(etap.NoDeviceError, match="no CUDA device"):
        decode(problem())
    with pytest.raises(etap.NoDeviceError, match="no CUDA device"):
        _C.plan_from_seqlens(problem(), SEQLENS, PLAN, 1 << 20, 0, NUM_SMS)
    with pytest.raises(etap.NoDeviceError, match="no CUDA device"):
        etap.check_device()


def test_plan_from_seqlens_checks_before_the_device():
    with pytest.raises(etap.UnsupportedError, match=TOO_MANY_ROWS):
        _C.plan_from_seqlens(problem(s_q=2, h_q=4096, max_pages_per_seq=0), SEQLENS, PLAN, 1 << 20, 0, NUM_SMS)
    with pytest.raises(etap.InvalidArgumentError, match="^seqlens is null"):
        _C.plan_from_seqlens(problem(max_pages_per_seq=0), 0, PLAN, 1 << 20, 0, NUM_SMS)
    with pytest.raises(etap.WorkspaceTooSmallError, match="plan buffer is 4 bytes"):
        _C.plan_from_seqlens(problem(max_pages_per_seq=0), SEQLENS, PLAN, 4, 0, NUM_SMS)
    with pytest.raises(etap.InvalidArgumentError, match="plan buffer is null"):
        _C.plan_from_seqlens(problem(max_pages_per_seq=0), SEQLENS, 0, 1 << 20, 0, NUM_SMS)


def test_merge_states_validation():
    def merge(dim=512, out_dtype=_C.DTYPE_FP32, o_states=Q, rows=4):
        _C.merge_states(2, rows, dim, o_states, rows * dim, dim, LSE, rows, _C.LSE_NATURAL, OUT, out_dtype, dim,
                        LSE, 0)

    with pytest.raises(etap.InvalidArgumentError, match="merge_states: dim must be a positive multiple of 4; got 6"):
        merge(dim=6)
    with pytest.raises(etap.InvalidArgumentError, match="merge_states: out_dtype must be bf16, fp16 or fp32"):
        merge(out_dtype=_C.DTYPE_FP8_E4M3)
    with pytest.raises(etap.InvalidArgumentError, match="o_states must be 16-byte aligned"):
        merge(o_states=Q + 4)
    merge(rows=0)  # nothing to merge: no launch, no error


def test_errors_are_per_thread_and_the_gil_is_released():
    failures = []

    def worker(s_q, h_q, expected):
        for _ in range(200):
            try:
                _C.buffer_sizes(problem(s_q=s_q, h_q=h_q), NUM_SMS)
                failures.append("no error")
            except etap.Error as error:
                if expected not in str(error):
                    failures.append(str(error))

    threads = [threading.Thread(target=worker, args=(2, 4096, "s_q·h_q = 8192 query rows")),
               threading.Thread(target=worker, args=(1, 0, "h_q must be at least 1"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# FP8 KV caches (issue 11): the binding passes kv_format and the scales; the library validates them.
def fp8_problem(kv_format, **fields):
    return problem(kv_format=kv_format, kv_dtype=_C.DTYPE_FP8_E4M3, **fields)


def fp8_strides(p, row_bytes):
    page_size, h_kv = p[6], p[3]
    return {"kv": (page_size * h_kv * row_bytes, h_kv * row_bytes, row_bytes)}


DESCALE = 0x100000 * 9


def test_problem_tuple_carries_the_kv_format():
    assert _layout.PROBLEM_FIELDS[-1] == "kv_format" and len(_C.DEFAULT_PROBLEM) == len(_layout.PROBLEM_FIELDS)
    assert _C.DEFAULT_PROBLEM[-1] == _C.KV_DENSE
    assert (_C.KV_DENSE, _C.KV_FP8_PER_TENSOR, _C.KV_FP8_DEEPSEEK_V32) == (0, 1, 2)
    assert _layout.problem(1, 1, 16, kv_format=_C.KV_FP8_PER_TENSOR)[10] == _C.DTYPE_FP8_E4M3


def test_fp8_problems_are_accepted_by_the_library():
    for kv_format in (_C.KV_FP8_PER_TENSOR, _C.KV_FP8_DEEPSEEK_V32):
        assert all(size > 0 for size in _C.buffer_sizes(fp8_problem(kv_format), NUM_SMS))
    p = fp8_problem(_C.KV_FP8_PER_TENSOR)
    _C.validate(*call_args(p, strides=fp8_strides(p, 576)), descale_k=DESCALE)
    _C.validate(*call_args(p, strides=fp8_strides(p, 576)), descale_k=DESCALE, descale_q=DESCALE)
    p = fp8_problem(_C.KV_FP8_DEEPSEEK_V32)
    _C.validate(*call_args(p, strides=fp8_strides(p, 656)))
    p = fp8_problem(_C.KV_FP8_DEEPSEEK_V32, q_dtype=_C.DTYPE_FP16, out_dtype=_C.DTYPE_FP16)
    with pytest.raises(etap.UnsupportedError, match="fp8_deepseek_v32 takes bf16 queries only"):
        _C.validate(*call_args(p, strides=fp8_strides(p, 656)))


def test_fp8_scales_are_passed_to_the_library():
    p = fp8_problem(_C.KV_FP8_PER_TENSOR)
    with pytest.raises(etap.InvalidArgumentError, match="descale_k is null; kv_format fp8_per_tensor needs"):
        _C.validate(*call_args(p, strides=fp8_strides(p, 576)))
    with pytest.raises(etap.InvalidArgumentError, match="descale_k must be 4-byte aligned"):
        _C.validate(*call_args(p, strides=fp8_strides(p, 576)), descale_k=DESCALE + 2)
    with pytest.raises(etap.InvalidArgumentError, match="descale_q must be 4-byte aligned"):
        _C.validate(*call_args(p, strides=fp8_strides(p, 576)), descale_k=DESCALE, descale_q=DESCALE + 2)
    with pytest.raises(etap.InvalidArgumentError, match="descale_q must be null for kv_format dense"):
        _C.validate(*call_args(problem()), descale_q=DESCALE)
    with pytest.raises(etap.InvalidArgumentError, match="descale_k must be null for kv_format dense"):
        _C.validate(*call_args(problem()), descale_k=DESCALE)
    with pytest.raises(etap.InvalidArgumentError, match="fp8_deepseek_v32 fixes d_qk = 576 and d_v = 512"):
        _C.buffer_sizes(fp8_problem(_C.KV_FP8_DEEPSEEK_V32, d_qk=320, d_v=256), NUM_SMS)
    with pytest.raises(etap.InvalidArgumentError, match="stores e4m3 values; set kv_dtype to fp8_e4m3"):
        _C.buffer_sizes(problem(kv_format=_C.KV_FP8_PER_TENSOR), NUM_SMS)


def test_kv_format_of_flashmla_calls():
    fp8 = lambda **kw: _layout.kv_format_of(**{**dict(fp8=True, is_fp8_kvcache=True, kv_dim=576, d_qk=576,
                                                       has_descale_k=True), **kw})
    assert fp8() == _C.KV_FP8_PER_TENSOR
    assert fp8(kv_dim=656, has_descale_k=False) == _C.KV_FP8_DEEPSEEK_V32
    assert fp8(fp8=False, is_fp8_kvcache=False, has_descale_k=False) == _C.KV_DENSE
    cases = [(dict(has_descale_k=False), "descale_k is None: an FP8 cache of 576 e4m3 bytes per token"),
             (dict(kv_dim=656), "descale_k must be None for a 656-byte"),
             (dict(kv_dim=600), r"last dimension is 600, neither q's head dim \(576\) nor 656"),
             (dict(is_fp8_kvcache=False), "k_cache holds bytes .*pass is_fp8_kvcache=True"),
             (dict(fp8=False), "is_fp8_kvcache=True needs a k_cache of torch.uint8"),
             (dict(fp8=False, is_fp8_kvcache=False), "descale_k is given but is_fp8_kvcache is False")]
    for changes, message in cases:
        with pytest.raises(etap.InvalidArgumentError, match=message):
            fp8(**changes)
