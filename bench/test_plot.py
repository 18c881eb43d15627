#!/usr/bin/env python3
"""CTest driver for bench/plot.py: renders a stored report into a fresh directory and checks the PNGs.

    test_plot.py REPORT.json OUT_DIR       exit 0 = pass, 1 = fail, 77 = skipped (no matplotlib)
"""

import os
import shutil
import subprocess
import sys

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 2000  # an empty canvas is smaller than any real chart
SKIPPED = 77


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 1
    report, out_dir = sys.argv[1], sys.argv[2]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"SKIPPED: matplotlib is not installed for {sys.executable} (Debian: apt-get install python3-matplotlib)")
        return SKIPPED
    shutil.rmtree(out_dir, ignore_errors=True)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot.py")
    run = subprocess.run([sys.executable, script, report, "--out", out_dir], capture_output=True, text=True)
    print(run.stdout, run.stderr, sep="")
    if run.returncode != 0:
        print(f"FAIL: plot.py exited with {run.returncode}")
        return 1
    sys.path.insert(0, os.path.dirname(script))
    import plot

    failures = 0
    for name in plot.OUTPUTS:
        path = os.path.join(out_dir, name)
        if not os.path.isfile(path):
            print(f"FAIL: {path} was not written")
            failures += 1
            continue
        with open(path, "rb") as f:
            data = f.read()
        if not data.startswith(PNG_MAGIC) or len(data) < MIN_PNG_BYTES:
            print(f"FAIL: {path} is not a plausible PNG ({len(data)} bytes)")
            failures += 1
        else:
            print(f"ok: {path} ({len(data)} bytes)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
