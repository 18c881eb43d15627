#!/usr/bin/env python3
"""CTest driver for bench/plot.py: renders stored reports into a fresh directory and checks the PNGs.

    test_plot.py OUT_DIR REPORT.json [REPORT.json ...]     exit 0 = pass, 1 = fail, 77 = skipped (no matplotlib)

Checks: every chart is written and is a plausible PNG no wider than MAX_WIDTH_PX (readable at page width);
every configuration of the bandwidth chart where an implementation has no bar is named, with that
implementation, in a note of the chart (plot.bandwidth_notes).
"""

import json
import os
import shutil
import struct
import subprocess
import sys

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 2000  # an empty canvas is smaller than any real chart
MAX_WIDTH_PX = 2000  # wider charts are unreadable when a page scales them to its width
SKIPPED = 77


def png_size(data):
    """(width, height) from the IHDR chunk, which follows the 8-byte signature and an 8-byte chunk header."""
    return struct.unpack(">II", data[16:24])


def check_charts(plot, report_path, out_dir):
    failures = 0
    prefix = os.path.splitext(os.path.basename(report_path))[0] + "-"
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot.py")
    run = subprocess.run([sys.executable, script, report_path, "--out", out_dir, "--prefix", prefix],
                         capture_output=True, text=True)
    print(run.stdout, run.stderr, sep="")
    if run.returncode != 0:
        print(f"FAIL: plot.py exited with {run.returncode} on {report_path}")
        return 1
    for name in plot.OUTPUTS:
        path = os.path.join(out_dir, prefix + name)
        if not os.path.isfile(path):
            print(f"FAIL: {path} was not written")
            failures += 1
            continue
        with open(path, "rb") as f:
            data = f.read()
        if not data.startswith(PNG_MAGIC) or len(data) < MIN_PNG_BYTES:
            print(f"FAIL: {path} is not a plausible PNG ({len(data)} bytes)")
            failures += 1
            continue
        width, height = png_size(data)
        if width > MAX_WIDTH_PX:
            print(f"FAIL: {path} is {width}x{height} px, wider than {MAX_WIDTH_PX}")
            failures += 1
        else:
            print(f"ok: {path} ({width}x{height} px, {len(data)} bytes)")

    report = plot.load(report_path)
    notes = plot.bandwidth_notes(report)
    charted = {plot.config_key(r["config"]) for r in plot.timed(report)}
    for r in report["records"]:
        key = plot.config_key(r["config"])
        if key in charted and not (r.get("status") == "ok" and r.get("us") is not None):
            label = plot.config_label(r["config"])
            if not any(label in n and r["impl"] in n for n in notes):
                print(f"FAIL: {report_path}: {r['impl']} has no bar at {label} ({r.get('status')}) and no note "
                      f"says why; notes: {notes}")
                failures += 1
    return failures


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 1
    out_dir, reports = sys.argv[1], sys.argv[2:]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"SKIPPED: matplotlib is not installed for {sys.executable} (Debian: apt-get install python3-matplotlib)")
        return SKIPPED
    shutil.rmtree(out_dir, ignore_errors=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import plot

    failures = sum(check_charts(plot, report, out_dir) for report in reports)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
