"""Runs pytest for a CTest entry and maps "nothing ran" to CTest's skip code.

usage: ctest_driver.py [--require MODULE]... -- PYTEST_ARGS...

Exit 77 (the entry's SKIP_RETURN_CODE), after one line saying why, when a required module (pytest, torch)
cannot be imported, when pytest collects nothing (its exit 5), or when every collected test skipped;
otherwise pytest's own exit status (0 passed, 1 failed, ...).
"""

from __future__ import annotations

import importlib
import sys

SKIP = 77
PYTEST_NO_TESTS = 5


class _Outcomes:
    """A pytest plugin counting test outcomes (call phase, or setup when it skipped or failed)."""

    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.skip_reasons = []

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.passed:
                self.passed += 1
            elif report.skipped:
                self.skipped += 1
                if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
                    reason = str(report.longrepr[2])
                    self.skip_reasons.append(reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason)
            else:
                self.failed += 1


def main(argv) -> int:
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    options, pytest_args = argv[:split], argv[split + 1:]
    required = ["pytest"] + [options[i + 1] for i, arg in enumerate(options) if arg == "--require"]
    for module in required:
        try:
            importlib.import_module(module)
        except Exception as error:  # ImportError, or a broken install raising something else
            print(f"SKIPPED: {module} is not importable by {sys.executable} ({type(error).__name__}: {error})")
            return SKIP
    import pytest

    outcomes = _Outcomes()
    status = int(pytest.main(pytest_args, plugins=[outcomes]))
    if status == PYTEST_NO_TESTS:
        print("SKIPPED: pytest collected no tests")
        return SKIP
    if status == 0 and outcomes.passed == 0 and outcomes.skipped > 0:
        reasons = sorted(set(outcomes.skip_reasons))
        print(f"SKIPPED: all {outcomes.skipped} tests skipped ({'; '.join(reasons[:3])})")
        return SKIP
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
