"""Shared fixtures: what a test needs (PyTorch, a Hopper GPU) and why it skips without it."""

from __future__ import annotations

import pytest

try:
    import torch
except ImportError:  # the binding tests run without PyTorch
    torch = None


def hopper_skip_reason():
    """None when PyTorch sees a compute-capability-9.0 GPU, else why the GPU tests skip."""
    if torch is None:
        return "PyTorch is not importable"
    if not torch.cuda.is_available():
        return "PyTorch sees no CUDA device"
    capability = torch.cuda.get_device_capability()
    if capability != (9, 0):
        return f"etap needs compute capability 9.0; {torch.cuda.get_device_name()} is {capability[0]}.{capability[1]}"
    return None


@pytest.fixture(scope="session")
def device():
    """The Hopper GPU the tests run on (skips the test when there is none)."""
    reason = hopper_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 reference must be fp32
    torch.backends.cudnn.allow_tf32 = False
    return torch.device("cuda", torch.cuda.current_device())
