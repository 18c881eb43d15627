"""The package's metadata and import behaviour, and the CTest driver's mapping of outcomes (no PyTorch)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import etap

PYTHON_DIR = Path(__file__).resolve().parents[1]
DRIVER = PYTHON_DIR / "tests" / "ctest_driver.py"


def test_version_matches_the_cmake_project_and_pyproject():
    cmake = (PYTHON_DIR.parent / "CMakeLists.txt").read_text()
    project_version = re.search(r"project\(etap VERSION (\S+)", cmake).group(1)
    pyproject = (PYTHON_DIR / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1) == project_version
    assert etap.__version__ == project_version


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="PyTorch is importable here")
def test_the_torch_api_says_it_needs_torch():
    with pytest.raises(ImportError, match="etap.decode needs PyTorch"):
        etap.decode  # noqa: B018


def run_driver(tmp_path, test_source, *options):
    (tmp_path / "test_case.py").write_text(test_source)
    return subprocess.run([sys.executable, str(DRIVER), *options, "--", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)


def test_driver_passes_pytests_status_through(tmp_path):
    assert run_driver(tmp_path, "def test_ok():\n    pass\n").returncode == 0
    assert run_driver(tmp_path, "def test_bad():\n    assert False\n").returncode == 1


def test_driver_reports_skips_with_code_77(tmp_path):
    nothing = run_driver(tmp_path, "x = 1\n")
    assert nothing.returncode == 77 and "SKIPPED: pytest collected no tests" in nothing.stdout
    skipped = run_driver(tmp_path, "import pytest\n\n@pytest.mark.skip(reason='no GPU here')\ndef test_a():\n"
                                   "    pass\n")
    assert skipped.returncode == 77 and "SKIPPED: all 1 tests skipped (no GPU here)" in skipped.stdout
    missing = run_driver(tmp_path, "def test_ok():\n    pass\n", "--require", "etap_no_such_module")
    assert missing.returncode == 77 and "SKIPPED: etap_no_such_module is not importable" in missing.stdout


def test_driver_counts_a_mix_of_skips_and_passes_as_passed(tmp_path):
    source = "import pytest\n\ndef test_a():\n    pass\n\n@pytest.mark.skip(reason='x')\ndef test_b():\n    pass\n"
    assert run_driver(tmp_path, source).returncode == 0
