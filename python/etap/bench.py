"""etap beside its peers on identical inputs: ``python -m etap.bench [--flashmla DIR] [--seed DIR] [--json FILE]``.

Peers are Python packages named ``flash_mla``: FlashMLA (9241ae3: ``get_mla_metadata()`` then
``flash_mla_with_kvcache(..., sched_meta, None, ...)``) and the ETAP seed code (FlashMLA's older interface:
``get_mla_metadata(cache_seqlens, s_q * h_q, 1)``). Each implementation runs in its own subprocess with its
own PYTHONPATH and the same seed, so every one sees the same inputs: random bf16 q and cache, pages in random
order, d 576/512, page 64, every request of length s_k.

Timing: CUDA events, median. Eager: the L2 is flushed (a 256 MiB write) before every call. CUDA graph: N
calls over N rotated copies of the cache (together well past the L2) captured once, the replays timed, per
call. Scheduling metadata is made outside the timed region for every implementation; etap's plan time is
reported on its own. etap is timed through etap.flash_mla (the same call shape as the peers: out and lse
allocated per call) and through its native call with every buffer passed in.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

SCALE = 0.1352337788608801  # DeepSeek-V3's 1/sqrt(192) · mscale²
L2_FLUSH_BYTES = 256 << 20
ROTATION_BYTES = 512 << 20  # the rotated cache copies of a graph add up to at least this


@dataclass(frozen=True)
class Config:
    b: int
    s_k: int
    h_q: int = 16
    s_q: int = 1
    causal: bool = False

    @property
    def name(self) -> str:
        return f"b{self.b}-sk{self.s_k}-hq{self.h_q}-sq{self.s_q}" + ("-causal" if self.causal else "")

    @property
    def kv_bytes(self) -> int:
        return self.b * self.s_k * 576 * 2

    @staticmethod
    def parse(text: str) -> "Config":
        """b16-sk8192-hq16-sq2-causal (fields in any order, h_q 16 and s_q 1 by default)."""
        fields = {"causal": False}
        for part in text.split("-"):
            if part == "causal":
                fields["causal"] = True
            else:
                for key, attr in (("sk", "s_k"), ("hq", "h_q"), ("sq", "s_q"), ("b", "b")):
                    if part.startswith(key) and part[len(key):].isdigit():
                        fields[attr] = int(part[len(key):])
                        break
                else:
                    raise argparse.ArgumentTypeError(f"cannot read {part!r} in config {text!r}")
        return Config(**fields)


K = 1024
DEFAULT_CONFIGS = (
    [Config(16, s_k) for s_k in (1 * K, 2 * K, 4 * K, 8 * K, 16 * K, 32 * K, 64 * K)]
    + [Config(1, 8 * K), Config(64, 4 * K), Config(64, 8 * K), Config(128, 4 * K), Config(128, 8 * K),
       Config(16, 8 * K, h_q=32), Config(16, 8 * K, s_q=2, causal=True), Config(16, 8 * K, h_q=64),
       Config(16, 8 * K, h_q=64, s_q=2, causal=True), Config(16, 8 * K, h_q=128), Config(128, 4 * K, h_q=128)])
CHECK_CONFIG = Config(16, 8 * K, s_q=2, causal=True)  # the cross-check of etap's output against FlashMLA's

IMPLEMENTATIONS = {"etap": "etap", "flashmla": "FlashMLA 9241ae3", "seed": "ETAP seed 39e6160"}


# ------------------------------------------------------------------------------------------ in a worker

def make_inputs(torch, config: Config, seed: int):
    """The same tensors in every process (same seed, same PyTorch): q, cache, block table, seqlens."""
    generator = torch.Generator(device="cuda").manual_seed(seed)
    pages_per_request = math.ceil(config.s_k / 64)
    num_pages = config.b * pages_per_request
    k_cache = torch.randn((num_pages, 64, 1, 576), generator=generator, device="cuda", dtype=torch.bfloat16)
    block_table = torch.randperm(num_pages, generator=generator, device="cuda").to(torch.int32)
    block_table = block_table.view(config.b, pages_per_request)
    q = torch.randn((config.b, config.s_q, config.h_q, 576), generator=generator, device="cuda",
                    dtype=torch.bfloat16)
    seqlens = torch.full((config.b,), config.s_k, dtype=torch.int32, device="cuda")
    return q, k_cache, block_table, seqlens


def time_eager(torch, fn, iters: int) -> float:
    """Median µs of `fn` with the L2 flushed before each call."""
    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device="cuda")
    for _ in range(3):
        fn()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for start, end in zip(starts, ends):
        flush.zero_()
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends)) * 1e3


def time_graph(torch, calls, replays: int) -> float:
    """Median µs per call of a graph holding `calls` (one per rotated cache copy), replayed `replays` times."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for call in calls:
            call()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for call in calls:
            call()
    graph.replay()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(replays)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(replays)]
    for start, end in zip(starts, ends):
        start.record()
        graph.replay()
        end.record()
    torch.cuda.synchronize()
    per_replay = statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends)) * 1e3
    del graph
    return per_replay / len(calls)


def rotation_copies(config: Config) -> int:
    return max(2, min(32, math.ceil(ROTATION_BYTES / config.kv_bytes)))


def peer_calls(torch, flash_mla, legacy_api: bool, config: Config, q, caches, block_table, seqlens):
    """One zero-argument call per cache copy, through a peer's (or etap.flash_mla's) FlashMLA interface, with
    the scheduling metadata made beforehand (the newer form's first call fills it, untimed)."""
    if legacy_api:
        metadata, num_splits = flash_mla.get_mla_metadata(seqlens, config.s_q * config.h_q, 1)
    else:
        metadata, num_splits = flash_mla.get_mla_metadata()
        flash_mla.flash_mla_with_kvcache(q, caches[0], block_table, seqlens, 512, metadata, num_splits, SCALE,
                                         config.causal)

    def call(cache):
        return lambda: flash_mla.flash_mla_with_kvcache(q, cache, block_table, seqlens, 512, metadata, num_splits,
                                                        SCALE, config.causal)
    return [call(cache) for cache in caches]


def run_worker(implementation: str, configs, seed: int, iters: int, replays: int, check_file: str | None):
    import torch

    if implementation == "etap":
        import etap
        import etap.flash_mla as flash_mla
        where = os.path.dirname(etap.__file__)
    else:
        import flash_mla
        where = os.path.dirname(flash_mla.__file__)
        etap = None
    legacy_api = implementation == "seed"
    results = []
    for config in configs:
        row = {"config": asdict(config), "name": config.name}
        try:
            q, k_cache, block_table, seqlens = make_inputs(torch, config, seed)
            caches = [k_cache] + [k_cache.clone() for _ in range(rotation_copies(config) - 1)]
            calls = peer_calls(torch, flash_mla, legacy_api, config, q, caches, block_table, seqlens)
            row["eager_us"] = time_eager(torch, calls[0], iters)
            row["graph_us"] = time_graph(torch, calls, replays)
            if etap is not None:
                plan = etap.plan(seqlens, config.s_q, config.h_q)
                workspace = etap.empty_workspace(config.b, config.s_q, config.h_q)
                out = torch.empty(config.b, config.s_q, config.h_q, 512, dtype=torch.bfloat16, device="cuda")
                lse = torch.empty(config.b, config.h_q, config.s_q, device="cuda")

                def native(cache):
                    return lambda: etap.decode(q, cache, block_table, seqlens, plan, softmax_scale=SCALE,
                                               causal=config.causal, out=out, lse=lse, workspace=workspace)
                native_calls = [native(cache) for cache in caches]
                row["native_eager_us"] = time_eager(torch, native_calls[0], iters)
                row["native_graph_us"] = time_graph(torch, native_calls, replays)
                row["plan_us"] = time_eager(torch, lambda: etap.plan(seqlens, config.s_q, config.h_q, out=plan), iters)
            if check_file and config == CHECK_CONFIG:
                torch.save([t.cpu() for t in calls[0]()], check_file)
            del caches, calls, q, k_cache
        except Exception as error:  # an unsupported config or a peer failure is reported, not fatal
            row["error"] = f"{type(error).__name__}: {error}"
        torch.cuda.empty_cache()
        results.append(row)
        print(f"  {implementation:8s} {config.name:26s} " +
              (row.get("error") or f"eager {row['eager_us']:8.1f} µs  graph {row['graph_us']:8.1f} µs"),
              file=sys.stderr, flush=True)
    if check_file and CHECK_CONFIG not in configs:  # the cross-check's outputs, untimed
        q, k_cache, block_table, seqlens = make_inputs(torch, CHECK_CONFIG, seed)
        call = peer_calls(torch, flash_mla, legacy_api, CHECK_CONFIG, q, [k_cache], block_table, seqlens)[0]
        torch.save([t.cpu() for t in call()], check_file)
    return {"implementation": implementation, "module": where, "results": results}


# --------------------------------------------------------------------------------------------- main

def copy_bandwidth_gbps(torch) -> float:
    """Device-to-device copy of 1 GiB: bytes read + written over the median time."""
    source = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    target = torch.empty_like(source)
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        target.copy_(source)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return 2 * source.numel() / (statistics.median(times[2:]) * 1e-3) / 1e9


def run_in_subprocess(implementation: str, path: str | None, args, check_file: str) -> dict:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_file = handle.name
    command = [sys.executable, "-m", "etap.bench", "--worker", implementation, "--worker-out", result_file,
               "--seed-value", str(args.seed_value), "--iters", str(args.iters), "--replays", str(args.replays),
               "--check-file", check_file, "--configs", *[c.name for c in args.configs]]
    completed = subprocess.run(command, env=env)
    try:
        with open(result_file) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {"implementation": implementation, "error": f"worker exited {completed.returncode}", "results": []}
    finally:
        os.unlink(result_file)


def reference(torch, config: Config, seed: int):
    """fp32 reference of `config`'s inputs (make_inputs with `seed`): out [b, s_q, h_q, 512] rounded to q's
    bf16 as FlashMLA's tests round theirs, lse (natural)."""
    q, k_cache, block_table, seqlens = make_inputs(torch, config, seed)
    outs, lses = [], []
    for i in range(config.b):
        kv = k_cache[block_table[i].long()].reshape(-1, 576)[: config.s_k].float()  # [s_k, 576]
        qi = q[i].float().reshape(config.s_q * config.h_q, 576)                      # rows (s, h)
        scores = (qi @ kv.T) * SCALE
        if config.causal:  # query token s sees keys [0, s_k - s_q + s]
            token = torch.arange(config.s_k, device="cuda")
            limit = config.s_k - config.s_q + torch.arange(config.s_q, device="cuda").repeat_interleave(config.h_q)
            scores = scores.masked_fill(token[None, :] > limit[:, None], float("-inf"))
        lse = torch.logsumexp(scores, dim=-1)
        outs.append((torch.softmax(scores, dim=-1) @ kv[:, :512]).reshape(config.s_q, config.h_q, 512))
        lses.append(lse.reshape(config.s_q, config.h_q).T)
    return torch.stack(outs).to(torch.bfloat16).cpu(), torch.stack(lses).cpu()


def agreement(torch, out, lse, ref_out, ref_lse) -> dict:
    """FlashMLA's dense-decode test criteria (out: abs 8e-4 or rel 2.01/128 elementwise, cosine diff 5e-6;
    lse: rel 8.01/65536) of one implementation's output against the fp32 reference."""
    a, b = out.float(), ref_out.float()
    diff = (a - b).abs()
    out_ok = bool(((diff < 8e-4) | (diff < 2.01 / 128 * (b.abs() + 1e-6))).all())
    cos_diff = 1 - 2 * float((a.double() * b.double()).sum()) / float((a.double() ** 2 + b.double() ** 2).sum())
    lse_rel = ((lse.float() - ref_lse).abs() / ref_lse.abs().clamp_min(1e-6)).max().item()
    ok = out_ok and abs(cos_diff) <= 5e-6 and lse_rel <= 8.01 / 65536
    return {"out_max_abs_diff": diff.max().item(), "out_cos_diff": cos_diff, "lse_max_rel_diff": lse_rel,
            "status": "within FlashMLA's tolerances" if ok else "outside FlashMLA's element tolerance"}


def cross_check(torch, check_files: dict, seed: int) -> dict:
    """Each implementation's out/lse on CHECK_CONFIG against an fp32 reference of the same inputs, by
    FlashMLA's test criteria (two bf16 kernels may each be within tolerance and still differ by more from each
    other, so they are judged against the reference, not against each other)."""
    present = {name: path for name, path in check_files.items() if os.path.exists(path)}
    if "etap" not in present:
        return {"config": CHECK_CONFIG.name, "status": "not run"}
    ref_out, ref_lse = reference(torch, CHECK_CONFIG, seed)
    result = {"config": CHECK_CONFIG.name, "against": "fp32 reference"}
    for name, path in present.items():
        out, lse = torch.load(path)
        result[name] = agreement(torch, out, lse, ref_out, ref_lse)
    # FlashMLA's element criterion is not met by FlashMLA itself at every config (its own tests stop at
    # shorter contexts), so the verdict on etap is relative: at least as close to the reference as FlashMLA.
    e = result["etap"]
    if "flashmla" in result:
        f = result["flashmla"]
        close = (e["out_max_abs_diff"] <= 1.25 * f["out_max_abs_diff"] + 1e-6
                 and abs(e["out_cos_diff"]) <= max(5e-6, 1.25 * abs(f["out_cos_diff"]))
                 and e["lse_max_rel_diff"] <= max(8.01 / 65536, 1.25 * f["lse_max_rel_diff"]))
        result["status"] = "etap as close as FlashMLA" if close else "etap FARTHER than FlashMLA"
    else:
        result["status"] = e["status"]
    return result


def table(report: dict) -> str:
    names = [name for name in ("flashmla", "seed") if name in report["implementations"]]
    rows = {}
    for implementation, result in report["implementations"].items():
        for row in result.get("results", []):
            rows.setdefault(row["name"], {})[implementation] = row
    header = ["config", "mode"] + [IMPLEMENTATIONS[n] for n in names] + ["etap", "etap native", "best peer/etap",
                                                                         "etap % copy BW", "plan µs"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def us(row, key):
        return f"{row[key]:.1f}" if row and key in row else ("err" if row and "error" in row else "–")

    for name, by_impl in rows.items():
        etap_row = by_impl.get("etap", {})
        kv_bytes = Config(**etap_row["config"]).kv_bytes if etap_row else 0
        for mode in ("eager", "graph"):
            key = f"{mode}_us"
            peers = [by_impl[n][key] for n in names if key in by_impl.get(n, {})]
            ratio = f"{min(peers) / etap_row[key]:.2f}" if peers and key in etap_row else "–"
            bandwidth = (f"{kv_bytes / (etap_row[key] * 1e-6) / 1e9 / report['copy_GBps'] * 100:.0f}%"
                         if key in etap_row else "–")
            cells = [name, mode] + [us(by_impl.get(n), key) for n in names] + [
                us(etap_row, key), us(etap_row, f"native_{mode}_us"), ratio, bandwidth,
                us(etap_row, "plan_us") if mode == "eager" else ""]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etap.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flashmla", metavar="DIR", help="PYTHONPATH entry whose flash_mla is FlashMLA 9241ae3")
    parser.add_argument("--seed", metavar="DIR", help="PYTHONPATH entry whose flash_mla is the ETAP seed code")
    parser.add_argument("--configs", nargs="+", type=Config.parse, default=DEFAULT_CONFIGS,
                        help="configs such as b16-sk8192-hq16-sq2-causal (default: the issue-9 and issue-10 rows)")
    parser.add_argument("--json", metavar="FILE", help="write the full report here")
    parser.add_argument("--iters", type=int, default=30, help="timed eager calls per config")
    parser.add_argument("--replays", type=int, default=10, help="timed graph replays per config")
    parser.add_argument("--seed-value", type=int, default=0, help="random seed of the inputs")
    parser.add_argument("--worker", choices=sorted(IMPLEMENTATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--check-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = run_worker(args.worker, args.configs, args.seed_value, args.iters, args.replays, args.check_file)
        with open(args.worker_out, "w") as handle:
            json.dump(result, handle)
        return 0

    import torch

    if not torch.cuda.is_available():
        print("etap.bench: no CUDA device", file=sys.stderr)
        return 2
    report = {"card": torch.cuda.get_device_name(), "copy_GBps": copy_bandwidth_gbps(torch),
              "torch": torch.__version__, "configs": [c.name for c in args.configs], "implementations": {}}
    torch.cuda.empty_cache()
    work = tempfile.mkdtemp(prefix="etap-bench-")
    check_files = {name: os.path.join(work, f"{name}-check.pt") for name in IMPLEMENTATIONS}
    for name, path in (("etap", None), ("flashmla", args.flashmla), ("seed", args.seed)):
        if name != "etap" and not path:
            continue
        print(f"etap.bench: timing {IMPLEMENTATIONS[name]}" + (f" from {path}" if path else ""), file=sys.stderr)
        report["implementations"][name] = run_in_subprocess(name, path, args, check_files[name])
        report["implementations"][name]["label"] = IMPLEMENTATIONS[name]
    report["cross_check"] = cross_check(torch, check_files, args.seed_value)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    print(f"\n{report['card']}, copy bandwidth {report['copy_GBps']:.0f} GB/s (read + write), PyTorch "
          f"{report['torch']}; µs per call, median; eager: L2 flushed before each call; graph: rotated caches")
    if "cross_check" in report:
        c = report["cross_check"]
        parts = [f"{IMPLEMENTATIONS[n]} {c[n]['status']} (out max |Δ| {c[n]['out_max_abs_diff']:.2e}, cos diff "
                 f"{c[n]['out_cos_diff']:.1e}, lse max rel Δ {c[n]['lse_max_rel_diff']:.1e})"
                 for n in IMPLEMENTATIONS if n in c]
        print(f"cross-check on {c['config']} against an fp32 reference: {c['status']}: " + "; ".join(parts))
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
