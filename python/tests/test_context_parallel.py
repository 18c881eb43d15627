"""python/examples/context_parallel.py on one GPU: the shards of a context-parallel group decoded one after
another, merged with etap.merge_states, against the fp32 reference and etap's single-GPU decode; and the
torch.distributed (NCCL) path with one rank under torchrun. A machine with two or more GPUs runs the same
example with more ranks (see docs/PERF.md)."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "context_parallel.py"


@pytest.fixture(scope="module")
def cp(device):
    spec = importlib.util.spec_from_file_location("context_parallel", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = [
    # (seqlens, s_q, h_q, causal): b = 1, 16, 64; requests whose shard is empty on some ranks; MTP s_q = 2
    ([8192], 1, 16, False),
    ([5000], 2, 16, True),
    ([1, 64, 65, 100, 700, 4096, 8191, 0, 3, 129, 2000, 64 * 9, 64 * 9 + 1, 50, 1000, 300], 1, 16, False),
    ([1, 64, 65, 100, 700, 4096, 8191, 0, 3, 129, 2000, 64 * 9, 64 * 9 + 1, 50, 1000, 300], 2, 16, True),
    ([(37 * i) % 3000 for i in range(64)], 2, 16, True),
    ([2048] * 16, 1, 32, False),
    # More query rows than one 64-row tile: TP1 (h_q = 128), with MTP, and h_q = 64 with MTP
    ([4096, 100, 3000, 0], 1, 128, False),
    ([2500, 1, 64 * 9 + 1, 5000], 2, 128, True),
    ([(53 * i) % 4000 for i in range(16)], 2, 64, True),
]


@pytest.mark.parametrize("layout", ["interleaved", "contiguous"])
@pytest.mark.parametrize("world", [1, 2, 4])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_shards_merge_to_the_whole_decode(cp, world, layout, case):
    seqlens, s_q, h_q, causal = CASES[case]
    result = cp.run(seqlens, s_q, h_q, causal, world, layout, seed=case)
    assert not result["problems"], result["problems"]


def test_a_million_tokens_over_four_shards(cp):
    result = cp.run([1 << 20], 1, 16, False, 4, "interleaved", seed=7)
    assert not result["problems"], result["problems"]


def test_torchrun_one_rank_over_nccl(device):
    env = dict(os.environ, NCCL_NVLS_ENABLE="0", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1", str(EXAMPLE),
               "--batch", "4", "--seqlen", "3000", "--s-q", "2", "--causal"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 rank(s), interleaved" in result.stdout and "PASS" in result.stdout, result.stdout
