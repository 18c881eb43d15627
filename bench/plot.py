#!/usr/bin/env python3
"""Charts from an `etap bench --json` report (schema etap-bench/1).

    python3 bench/plot.py results.json --out docs/img/ [--prefix h100-]

writes three PNGs:
  time_vs_sk.png  time vs s_k per implementation, one panel per batch (the paper's sweep), with the floor
                  (KV bytes / measured copy bandwidth) and, below, each baseline's time relative to etap;
  bandwidth.png   achieved bandwidth as % of the measured copy bandwidth, per configuration and implementation,
                  one panel row per sweep, with a note for every implementation that has no bar and why;
  roofline.png    arithmetic intensity vs achieved TFLOP/s under the measured bandwidth and bf16 GEMM ceilings.
Needs only matplotlib (Debian: python3-matplotlib); renders without a display (Agg).
"""

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

SCHEMA = "etap-bench/1"
OUTPUTS = ("time_vs_sk.png", "bandwidth.png", "roofline.png")
IMPL_STYLE = {  # colour, marker
    "etap": ("tab:blue", "o"),
    "padded": ("tab:orange", "s"),
    "cublas": ("tab:green", "^"),
}
FALLBACK_COLOURS = ("tab:red", "tab:purple", "tab:brown", "tab:pink")
DPI = 130


def load(path):
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    if report.get("schema") != SCHEMA:
        raise SystemExit(f"{path}: not an etap bench report (schema {report.get('schema')!r}, expected {SCHEMA!r})")
    return report


def style(impl, order):
    if impl in IMPL_STYLE:
        return IMPL_STYLE[impl]
    return FALLBACK_COLOURS[order.index(impl) % len(FALLBACK_COLOURS)], "D"


def timed(report):
    return [r for r in report["records"] if r.get("status") == "ok" and r.get("us") is not None]


def impl_order(records):
    order = []
    for r in records:
        if r["impl"] not in order:
            order.append(r["impl"])
    return order


# MLA's shape: what a report written before these fields existed holds.
SHAPE_DEFAULTS = {"h_kv": 1, "page_size": 64, "d_qk": 576, "d_v": 512}


def shape(c):
    return tuple(c.get(name, default) for name, default in SHAPE_DEFAULTS.items())


def config_key(c):
    return (c["sweep"], c["batch"], c["seqlen"], c["h_q"], c["s_q"], c["causal"], c["varlen"], c["dtype"]) + shape(c)


def config_label(c):
    def k(n):
        return f"{n // 1024}K" if n >= 1024 and n % 1024 == 0 else str(n)

    label = f"b{c['batch']} {'~' if c['varlen'] else ''}{k(c['seqlen'])} h{c['h_q']}"
    if c["s_q"] > 1:
        label += f" q{c['s_q']}{'c' if c['causal'] else ''}"
    h_kv, page_size, d_qk, d_v = shape(c)
    if h_kv != 1:
        label += f" kv{h_kv}"
    if page_size != 64:
        label += f" p{page_size}"
    if (d_qk, d_v) != (576, 512):
        label += f" d{d_qk}/{d_v}"
    if c["dtype"] != "bf16":
        label += f" {c['dtype']}"
    return label


def subtitle(report):
    m = report["machine"]
    parts = [m.get("gpu", "?")]
    if m.get("date"):
        parts.append(m["date"][:10])
    if report["method"].get("graph"):
        parts.append("CUDA graph")
    text = " · ".join(parts)
    if report.get("synthetic"):
        text = "SYNTHETIC SAMPLE, NOT MEASURED · " + text
    return text


def no_data(path, title, report):
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.axis("off")
    ax.text(0.5, 0.5, "no timed records for this chart", ha="center", va="center")
    fig.suptitle(f"{title}\n{subtitle(report)}", fontsize=10)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def sk_formatter():
    return FuncFormatter(lambda x, _: f"{int(x) // 1024}K" if x >= 1024 else f"{int(x)}")


def plot_time_vs_sk(report, path):
    records = timed(report)
    paper = [r for r in records if r["config"]["sweep"] == "paper"]
    if not paper:  # free-form runs: any fixed-length configurations with the paper's head shape
        paper = [r for r in records if not r["config"]["varlen"] and r["config"]["h_q"] == 16 and r["config"]["s_q"] == 1]
    title = "Decode time vs KV length (h_q=16, s_q=1)"
    if not paper:
        return no_data(path, title, report)
    order = impl_order(paper)
    batches = sorted({r["config"]["batch"] for r in paper})
    baselines = [i for i in order if i != "etap"] if "etap" in order else []
    rows = 2 if baselines else 1
    fig, axes = plt.subplots(rows, len(batches), figsize=(5.2 * len(batches), 4.2 + 2.4 * (rows - 1)),
                             squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [3, 1.6] if rows == 2 else [1]})
    for col, b in enumerate(batches):
        ax = axes[0][col]
        mine = [r for r in paper if r["config"]["batch"] == b]
        for impl in order:
            pts = sorted((r["config"]["seqlen"], r["us"]) for r in mine if r["impl"] == impl)
            if pts:
                colour, marker = style(impl, order)
                ax.plot(*zip(*pts), marker=marker, color=colour, label=impl)
        floor = sorted({(r["config"]["seqlen"], r["floor_us"]) for r in mine if r.get("floor_us")})
        if floor:
            ax.plot(*zip(*floor), "k--", linewidth=1, label="floor: KV bytes / copy BW")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"b = {b}")
        ax.set_ylabel("µs per decode call (median)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        if rows == 2:
            rax = axes[1][col]
            etap = {r["config"]["seqlen"]: r["us"] for r in mine if r["impl"] == "etap"}
            for impl in baselines:
                pts = sorted((r["config"]["seqlen"], r["us"] / etap[r["config"]["seqlen"]])
                             for r in mine if r["impl"] == impl and r["config"]["seqlen"] in etap)
                if pts:
                    colour, marker = style(impl, order)
                    rax.plot(*zip(*pts), marker=marker, color=colour, label=f"{impl} / etap")
            rax.axhline(1.0, color="k", linewidth=0.8)
            rax.set_ylabel("time / etap's")
            rax.grid(True, alpha=0.3)
            rax.legend(fontsize=8)
        bottom = axes[rows - 1][col]
        bottom.set_xscale("log", base=2)
        bottom.xaxis.set_major_formatter(sk_formatter())
        bottom.xaxis.set_minor_formatter(NullFormatter())
        bottom.set_xlabel("s_k (tokens per request)")
    fig.suptitle(f"{title}\n{subtitle(report)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


MAX_GROUPS_PER_ROW = 18  # configurations per panel row: keeps the chart readable at page width
BANDWIDTH_WIDTH_IN = 12.0  # 12 in at DPI 130 = 1560 px


def charted_configs(records):
    configs, seen = [], set()
    for r in records:
        key = config_key(r["config"])
        if key not in seen:
            seen.add(key)
            configs.append(r["config"])
    return configs


def bandwidth_rows(configs):
    """Panel rows of the bandwidth chart: one per sweep, long sweeps split into rows of MAX_GROUPS_PER_ROW."""
    rows, current = [], []
    for c in configs:
        if current and (c["sweep"] != current[-1]["sweep"] or len(current) == MAX_GROUPS_PER_ROW):
            rows.append(current)
            current = []
        current.append(c)
    if current:
        rows.append(current)
    return rows


def bandwidth_notes(report):
    """One line per reason why an implementation has no bar at a charted configuration, naming both."""
    records = timed(report)
    charted = {config_key(c): c for c in charted_configs(records)}
    ok = {(config_key(r["config"]), r["impl"]) for r in records}
    groups = {}  # (status, reason) -> {impl: [labels]}
    for r in report["records"]:
        key = config_key(r["config"])
        if key not in charted or (key, r["impl"]) in ok:
            continue
        status = r.get("status") or "no result"
        message = r.get("message") or ""
        reason = message.split("; ", 1)[1].split(" (", 1)[0] if "; " in message else message.split(" (", 1)[0]
        labels = groups.setdefault((status, reason[:80]), {}).setdefault(r["impl"], [])
        labels.append(config_label(charted[key]))
    notes = []
    for (status, reason), by_impl in groups.items():
        for impl, labels in by_impl.items():
            why = f"{status}: {reason}" if reason else status
            notes.append(f"no {impl} bar at {', '.join(labels)} ({why})")
    return notes


def plot_bandwidth(report, path):
    records = timed(report)
    title = "Achieved bandwidth, % of the measured copy bandwidth"
    if not records:
        return no_data(path, title, report)
    order = impl_order(records)
    rows = bandwidth_rows(charted_configs(records))
    notes = bandwidth_notes(report)
    width = 0.8 / len(order)
    ceil = report["ceilings"]
    fig, axes = plt.subplots(len(rows), 1, figsize=(BANDWIDTH_WIDTH_IN, 2.9 * len(rows) + 1.0 + 0.22 * len(notes)),
                             squeeze=False)
    for row, (ax,) in zip(rows, axes):
        for i, impl in enumerate(order):
            by_key = {config_key(r["config"]): r["pct_copy"] for r in records if r["impl"] == impl}
            xs = [x for x, c in enumerate(row) if by_key.get(config_key(c)) is not None]
            ys = [by_key[config_key(row[x])] for x in xs]
            colour, _ = style(impl, order)
            ax.bar([x - 0.4 + width * (i + 0.5) for x in xs], ys, width, color=colour, label=impl)
        ax.axhline(100.0, color="k", linewidth=1, label="copy ceiling")
        if ceil.get("read_gbps") and ceil.get("copy_gbps"):
            ax.axhline(100.0 * ceil["read_gbps"] / ceil["copy_gbps"], color="k", linestyle=":", linewidth=1,
                       label=f"read-only ceiling ({ceil['read_gbps']:.0f} GB/s)")
        ax.set_xlim(-0.6, max(len(row), MAX_GROUPS_PER_ROW // 2) - 0.4)
        ax.set_xticks(range(len(row)))
        ax.set_xticklabels([config_label(c) for c in row], rotation=35, ha="right", fontsize=7)
        ax.set_ylabel(f"% of {ceil.get('copy_gbps') or 0:.0f} GB/s", fontsize=8)
        ax.set_ylim(0, 115)
        ax.grid(True, axis="y", alpha=0.3)
        ax.text(0.005, 0.97, f"{row[0]['sweep']} sweep", transform=ax.transAxes, va="top", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.02), ncol=len(order) + 2, frameon=False)
    fig.suptitle(f"{title}\n{subtitle(report)}", fontsize=10)
    bottom = 0.0
    if notes:
        bottom = (0.22 * len(notes) + 0.2) / fig.get_figheight()
        fig.text(0.01, 0.01, "\n".join(notes), fontsize=7, va="bottom", wrap=True)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def padded_mma_factor(config):
    rows = config["s_q"] * config["h_q"]
    return 64 * -(-rows // 64) / rows


def plot_roofline(report, path):
    records = [r for r in timed(report) if r.get("tflops") and r.get("bytes")]
    title = "Roofline: arithmetic intensity vs achieved TFLOP/s"
    ceil = report["ceilings"]
    if not records or not ceil.get("copy_gbps") or not ceil.get("gemm_tflops"):
        return no_data(path, title, report)
    order = impl_order(records)
    intensities = [r["flops"] / r["bytes"] * (padded_mma_factor(r["config"]) if r["impl"] == "padded" else 1)
                   for r in records]
    ridge = ceil["gemm_tflops"] * 1e3 / ceil["copy_gbps"]
    lo, hi = min(intensities + [ridge]) / 2, max(intensities + [ridge]) * 4
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    ax.plot(xs, [min(ceil["gemm_tflops"], x * ceil["copy_gbps"] / 1e3) for x in xs], "k-", linewidth=1.2,
            label=f"copy {ceil['copy_gbps']:.0f} GB/s, bf16 GEMM {ceil['gemm_tflops']:.0f} TFLOP/s")
    if ceil.get("read_gbps"):
        ax.plot(xs, [min(ceil["gemm_tflops"], x * ceil["read_gbps"] / 1e3) for x in xs], "k:", linewidth=1,
                label=f"read-only {ceil['read_gbps']:.0f} GB/s")
    ax.axvline(ridge, color="grey", linewidth=0.6, linestyle="--")
    ax.annotate(f"ridge {ridge:.0f} FLOP/B", (ridge, ceil["gemm_tflops"]), textcoords="offset points",
                xytext=(4, -12), fontsize=8, color="grey")
    for impl in order:
        mine = [r for r in records if r["impl"] == impl]
        colour, marker = style(impl, order)
        ax.scatter([r["flops"] / r["bytes"] for r in mine], [r["tflops"] for r in mine], color=colour, marker=marker,
                   label=impl, alpha=0.8, edgecolors="none")
        if impl == "padded":
            # Rows padded to wgmma's M = 64 execute 64·ceil(R/64)/R times the useful MMA work.
            pad = [padded_mma_factor(r["config"]) for r in mine]
            ax.scatter([f * r["flops"] / r["bytes"] for f, r in zip(pad, mine)],
                       [f * r["tflops"] for f, r in zip(pad, mine)], facecolors="none", edgecolors=colour,
                       marker=marker, label="padded, executed MMA work")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (useful FLOPs / bytes, FLOP/B)")
    ax.set_ylabel("achieved TFLOP/s (useful FLOPs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{title}\n{subtitle(report)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="JSON written by `etap bench --json`")
    parser.add_argument("--out", default=".", help="directory for the PNGs (created if missing)")
    parser.add_argument("--prefix", default="", help="prefix of the file names, e.g. h100-")
    args = parser.parse_args(argv)
    report = load(args.report)
    os.makedirs(args.out, exist_ok=True)
    written = []
    for name, draw in zip(OUTPUTS, (plot_time_vs_sk, plot_bandwidth, plot_roofline)):
        path = os.path.join(args.out, args.prefix + name)
        draw(report, path)
        written.append(path)
        print(path)
    return written


if __name__ == "__main__":
    main(sys.argv[1:])
