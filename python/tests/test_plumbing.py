"""The torch layer down to the library, on a machine without PyTorch or a GPU (fake_torch.py stands in).

Each call must get through the torch layer's checks and the library's validation of every address, stride
and buffer size, and stop at the device check (NoDeviceError). An argument in the wrong place, a miscounted
argument list or a wrong stride would fail earlier with another error. Runs in a subprocess, so the fake never
meets a real PyTorch; skipped where PyTorch or a CUDA device is present (the GPU tests cover it there).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

from test_binding import has_device

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is not None or has_device(),
                                reason="PyTorch or a CUDA device is present: the GPU tests cover the torch layer")

SCENARIOS = textwrap.dedent("""
    import fake_torch as T
    T.install()
    import etap
    import etap.flash_mla as flash_mla
    import etap.flash_mla_legacy as flash_mla_legacy
    from etap import _C

    sizes, plan_from_seqlens = _C.buffer_sizes, _C.plan_from_seqlens
    _C.buffer_sizes = lambda problem, num_sms=0: sizes(problem, num_sms or 132)  # as if on a 132-SM GPU
    planned = []

    def fake_plan(problem, seqlens, plan, plan_bytes, stream, num_sms):
        sized = problem[:7] + (1, problem[8] or 1) + problem[9:]  # num_pages is not read; 0 pages: unbounded
        assert plan_bytes >= sizes(sized, 132)[0]  # the plan's problem is valid and its buffer large enough
        planned.append(problem)

    def expect(label, error, text, fn):
        try:
            fn()
        except error as e:
            assert text in str(e), f"{label}: {type(e).__name__}: {e}"
            print("ok", label)
            return
        except Exception as e:
            raise AssertionError(f"{label}: {type(e).__name__}: {e}") from e
        raise AssertionError(f"{label}: no error")

    b, s_q, h_q = 4, 2, 16
    q = T.empty(b, s_q, h_q, 576, dtype=T.bfloat16)
    wide = T.empty(100, 64, 656, dtype=T.bfloat16)
    k_cache = wide.view_of((100, 64, 1, 576), (64 * 656, 656, 1, 1))  # kv[..., :576].unsqueeze(-2), odd size-1 stride
    table_buffer = T.empty(8, 64, dtype=T.int32)
    block_table = table_buffer.view_of((b, 16), (64, 1))  # SGLang's [:bs, :pages] view
    seqlens = T.empty(b, dtype=T.int32)
    no_device = "CUDA device"  # "no CUDA device found", or "cannot query the SM count of the current CUDA device"

    expect("native plan", etap.NoDeviceError, no_device, lambda: etap.plan(seqlens, s_q, h_q, num_sms=132))
    plan = etap.empty_plan(b, s_q, h_q, num_sms=132)
    native = lambda **kw: etap.decode(q, k_cache, block_table, seqlens, plan, softmax_scale=0.1352, causal=True,
                                      num_sms=132, **kw)
    expect("native decode", etap.NoDeviceError, no_device, native)
    expect("native decode, base 2, buffers", etap.NoDeviceError, no_device,
           lambda: native(lse_base="2", out=T.empty(b, s_q, h_q, 512, dtype=T.bfloat16), lse=T.empty(b, h_q, s_q),
                          workspace=etap.empty_workspace(b, s_q, h_q, num_sms=132)))
    expect("native decode, transposed lse", etap.NoDeviceError, no_device,
           lambda: native(lse=T.empty(b, s_q, h_q).view_of((b, h_q, s_q), (h_q * s_q, 1, h_q))))
    odd = T.empty(100, 64, 580, dtype=T.bfloat16).view_of((100, 64, 1, 576), (64 * 580, 580, 576, 1))
    expect("kv token stride reaches the library", etap.InvalidArgumentError, "kv_token_stride = 580",
           lambda: etap.decode(q, odd, block_table, seqlens, plan, softmax_scale=0.1, num_sms=132))
    shifted = T.empty(b * s_q * h_q * 576 + 8, dtype=T.bfloat16).view_of((b, s_q, h_q, 576),
                                                                       (s_q * h_q * 576, h_q * 576, 576, 1), offset=1)
    expect("q address reaches the library", etap.InvalidArgumentError, "q must be 16-byte aligned",
           lambda: etap.decode(shifted, k_cache, block_table, seqlens, plan, softmax_scale=0.1, num_sms=132))
    expect("scale reaches the library", etap.InvalidArgumentError, "softmax_scale must be a finite positive number",
           lambda: etap.decode(q, k_cache, block_table, seqlens, plan, softmax_scale=-2.0, num_sms=132))
    expect("a CPU tensor", etap.InvalidArgumentError, "block_table is on the CPU",
           lambda: etap.decode(q, k_cache, T.empty(b, 16, dtype=T.int32, device="cpu"), seqlens, plan,
                               softmax_scale=0.1, num_sms=132))
    expect("merge_states", etap.NoDeviceError, no_device, lambda: etap.merge_states(T.empty(2, 8, 512), T.empty(2, 8)))

    _C.plan_from_seqlens = fake_plan
    meta, none = flash_mla.get_mla_metadata(seqlens, s_q * h_q, 1, is_fp8_kvcache=False)
    assert none is None and not meta.have_initialized
    new_form_of = lambda q, k_cache: (lambda meta: flash_mla.flash_mla_with_kvcache(q, k_cache, block_table, seqlens,
                                                                                    512, meta, None, 0.1352, True))
    new_form = new_form_of(q, k_cache)
    expect("newer FlashMLA form", etap.NoDeviceError, no_device, lambda: new_form(meta))
    assert meta.have_initialized and planned[-1][8] == 64, planned[-1]  # capacity: the buffer's row width
    expect("newer form, second layer", etap.NoDeviceError, no_device, lambda: new_form(meta))
    assert len(planned) == 1  # planned once per sched_meta
    metadata, num_splits = flash_mla_legacy.get_mla_metadata(seqlens, s_q * h_q, 1)
    assert planned[-1][8] == 0 and num_splits.shape == (b + 1,), planned[-1]
    assert metadata.nbytes == sizes((1024, 1, 32, 1, 576, 512, 64, 1, 1, 0, 0, 0, 0), 132)[0]
    expect("older FlashMLA form", etap.NoDeviceError, no_device,
           lambda: flash_mla_legacy.flash_mla_with_kvcache(q, k_cache, block_table, seqlens, 512, metadata,
                                                           num_splits, None, True))

    # Issue 10's shapes reach the library unchanged: h_kv = 2, 16-token pages, more than 64 rows, d 320/256.
    q64 = T.empty(b, s_q, 64, 576, dtype=T.bfloat16)
    kv16 = T.empty(400, 16, 2, 576, dtype=T.bfloat16)
    plan16 = etap.empty_plan(b, s_q, 64, h_kv=2, page_size=16, num_sms=132)
    expect("native decode, h_kv 2, page 16, 128 rows", etap.NoDeviceError, no_device,
           lambda: etap.decode(q64, kv16, block_table, seqlens, plan16, softmax_scale=0.1, num_sms=132))
    q320 = T.empty(b, s_q, h_q, 320, dtype=T.bfloat16)
    kv320 = T.empty(100, 64, 1, 320, dtype=T.bfloat16)
    expect("native decode, d 320/256", etap.NoDeviceError, no_device,
           lambda: etap.decode(q320, kv320, block_table, seqlens, plan, softmax_scale=0.1, d_v=256, num_sms=132,
                               workspace=etap.empty_workspace(b, s_q, h_q, d_v=256, num_sms=132)))
    expect("newer FlashMLA form, h_kv 2, page 16", etap.NoDeviceError, no_device,
           lambda: new_form_of(q64, kv16)(flash_mla.get_mla_metadata()[0]))
    assert planned[-1][:7] == (b, s_q, 64, 2, 576, 512, 16), planned[-1]

    # The older form's metadata knows R = s_q·h_q/h_kv only: for s_q = 4 tokens of 42 heads (4 row tiles, 3 for
    # one token of 168 heads) the call plans afresh for its own shape, with the block table's capacity.
    q42 = T.empty(b, 4, 42, 576, dtype=T.bfloat16)
    metadata42, splits42 = flash_mla_legacy.get_mla_metadata(seqlens, 4 * 42, 1)
    assert planned[-1][1:3] == (1, 168), planned[-1]
    expect("older form, re-tiled shape", etap.NoDeviceError, no_device,
           lambda: flash_mla_legacy.flash_mla_with_kvcache(q42, k_cache, block_table, seqlens, 512, metadata42,
                                                           splits42, None, True))
    assert planned[-1][1:3] == (4, 42) and planned[-1][8] == 64, planned[-1]
    count = len(planned)
    expect("older form, same tiles", etap.NoDeviceError, no_device,
           lambda: flash_mla_legacy.flash_mla_with_kvcache(q, k_cache, block_table, seqlens, 512, metadata, num_splits,
                                                           None, True))
    assert len(planned) == count  # s_q = 2 tokens of 16 heads: one tile either way, the metadata's plan is used

    # Variable query lengths: packed q [total_q, h_q, d_qk], out [total_q, h_q, d_v], lse [h_q, total_q].
    total_q, max_q = 7, 3
    cu = T.empty(b + 1, dtype=T.int32)
    q_packed = T.empty(total_q, h_q, 576, dtype=T.bfloat16)
    plan_v = etap.empty_plan(b, max_q, h_q, num_sms=132)
    varlen = lambda **kw: etap.decode(q_packed, k_cache, block_table, seqlens, plan_v, softmax_scale=0.1352,
                                      causal=True, num_sms=132, cu_seqlens_q=cu, max_seqlen_q=max_q, **kw)
    expect("native varlen decode", etap.NoDeviceError, no_device, varlen)
    expect("native varlen decode, buffers", etap.NoDeviceError, no_device,
           lambda: varlen(out=T.empty(total_q, h_q, 512, dtype=T.bfloat16), lse=T.empty(h_q, total_q),
                          workspace=etap.empty_workspace(b, max_q, h_q, num_sms=132)))
    expect("varlen rows reach the library", etap.UnsupportedError, "s_q·h_q = 4112",
           lambda: etap.decode(q_packed, k_cache, block_table, seqlens, plan_v, softmax_scale=0.1, num_sms=132,
                               cu_seqlens_q=cu, max_seqlen_q=257, workspace=etap.empty_workspace(b, 1, h_q,
                                                                                                 num_sms=132)))
    expect("varlen needs both", etap.InvalidArgumentError, "max_seqlen_q",
           lambda: etap.decode(q_packed, k_cache, block_table, seqlens, plan_v, softmax_scale=0.1, cu_seqlens_q=cu))
    expect("varlen offsets shape", etap.InvalidArgumentError, "cu_seqlens_q must have shape [5]",
           lambda: etap.decode(q_packed, k_cache, block_table, seqlens, plan_v, softmax_scale=0.1, num_sms=132,
                               cu_seqlens_q=T.empty(b, dtype=T.int32), max_seqlen_q=max_q))
    expect("varlen lse shape", etap.InvalidArgumentError, "lse must have shape [16, 7]",
           lambda: varlen(lse=T.empty(total_q, h_q)))
    print("all scenarios passed")
""")


def test_the_torch_layer_reaches_the_librarys_device_check():
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ)
    env["PYTHONPATH"] = tests + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-c", SCENARIOS], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and "all scenarios passed" in result.stdout, result.stdout + result.stderr
