"""Host time per call of etap's Python entry points and their parts (b=16, 1K, h_q=16): a loop of 2000 calls
timed with perf_counter (the kernel queue never the limit), then a cProfile of the FlashMLA drop-in.
Run on a machine with PyTorch and a Hopper GPU after installing the package: python3 python/tools/host_time.py
"""
import time, cProfile, pstats, io, torch
import etap, etap.flash_mla as fm
from etap import _ops, _layout
torch.manual_seed(0)
b, s_k, h_q, s_q = 16, 1024, 16, 1
pages = s_k // 64
kv = torch.randn(b * pages, 64, 1, 576, dtype=torch.bfloat16, device="cuda")
bt = torch.randperm(b * pages, dtype=torch.int32, device="cuda").view(b, pages)
sl = torch.full((b,), s_k, dtype=torch.int32, device="cuda")
q = torch.randn(b, s_q, h_q, 576, dtype=torch.bfloat16, device="cuda")
meta, _ = fm.get_mla_metadata()
fm.flash_mla_with_kvcache(q, kv, bt, sl, 512, meta, None, 0.1352, False)
plan = etap.plan(sl, s_q, h_q); ws = etap.empty_workspace(b, s_q, h_q)
out = torch.empty(b, s_q, h_q, 512, dtype=torch.bfloat16, device="cuda"); lse = torch.empty(b, h_q, s_q, device="cuda")
cfg = fm.FlashMLASchedMeta.Config(b, s_q, h_q, 64, 1, False, False)
cases = {
 "flash_mla_with_kvcache": lambda: fm.flash_mla_with_kvcache(q, kv, bt, sl, 512, meta, None, 0.1352, False),
 "etap.decode(out,lse,ws)": lambda: etap.decode(q, kv, bt, sl, plan, softmax_scale=0.1352, out=out, lse=lse, workspace=ws),
 "decode_impl table=False": lambda: _ops.decode_impl(q, kv, bt, sl, plan, ws, out, lse, 0.1352, False, 0, False, 0, False),
 "decode_impl table=True": lambda: _ops.decode_impl(q, kv, bt, sl, plan, ws, out, lse, 0.1352, False, 0, True, 0, False),
 "new_outputs": lambda: _ops.new_outputs(q, 512),
 "stream_handle": lambda: _ops.stream_handle(0),
 "untyped_storage().nbytes()": lambda: bt.untyped_storage().nbytes(),
 "max_pages_per_seq(True)": lambda: _ops.max_pages_per_seq(bt, True),
 "is_compiling": lambda: torch.compiler.is_compiling(),
 "Config()+eq": lambda: fm.FlashMLASchedMeta.Config(b, s_q, h_q, 64, 1, False, False) == cfg,
 "torch.cuda.current_device": lambda: torch.cuda.current_device(),
}
for name, fn in cases.items():
    for _ in range(50): fn()
    torch.cuda.synchronize(); t = time.perf_counter(); n = 2000
    for _ in range(n): fn()
    host = (time.perf_counter() - t) / n * 1e6; torch.cuda.synchronize()
    print(f"{name:30s} {host:7.2f} us/call host")
pr = cProfile.Profile(); pr.enable()
for _ in range(2000): cases["flash_mla_with_kvcache"]()
pr.disable(); torch.cuda.synchronize()
s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(22); print(s.getvalue()[-6000:])
