"""etap — MLA decode attention for Hopper GPUs, from PyTorch.

Native API (this module): ``plan`` then ``decode`` with caller-owned buffers (``empty_plan``,
``empty_workspace``, ``out=``, ``lse=``), the LSE base named in the call, ``merge_states``. Each is a torch
custom op (``torch.ops.etap.*``) under torch.compile and a direct call in eager mode.

Drop-ins for FlashMLA's Python interface: ``etap.flash_mla`` (FlashMLA since 2026-01, as vLLM calls it) and
``etap.flash_mla_legacy`` (FlashMLA's older interface, SGLang's ``sgl_kernel.flash_mla``).

The compiled part, ``etap._C``, is a torch-agnostic binding over libetap's C ABI; it imports without PyTorch,
and so do the exceptions and the buffer-size functions here. Errors: ``ValueError`` subclasses for what the
caller can fix, ``RuntimeError`` subclasses for the machine; all are ``etap.Error``.
"""

from __future__ import annotations

try:  # first, so that the CUDA runtime _C binds to is the one PyTorch loaded
    import torch as _torch
except ImportError:  # the binding and the size functions work without PyTorch
    _torch = None

try:
    from etap import _C
except ImportError as error:  # a source checkout without the built module
    raise ImportError(
        f"etap._C cannot be loaded ({error}); install the package with "
        "`pip install --no-build-isolation ./python`, or put <build>/python on PYTHONPATH") from error

from etap._C import (CheckFailedError, CudaError, Error, InvalidArgumentError, NoDeviceError,  # noqa: F401
                     UnsupportedError, WorkspaceTooSmallError)
from etap import _layout

__version__ = "0.1.0"
__all__ = ["Error", "InvalidArgumentError", "UnsupportedError", "WorkspaceTooSmallError", "CheckFailedError",
           "NoDeviceError", "CudaError", "PADDING_PAGE_ID", "plan_bytes", "workspace_bytes", "check_device",
           "plan", "decode", "merge_states", "empty_plan", "empty_workspace"]

PADDING_PAGE_ID = _C.PADDING_PAGE_ID  # FlashMLA's id for unused block-table entries (never read by etap)


def plan_bytes(batch: int, s_q: int, h_q: int, *, h_kv: int = 1, page_size: int = 64, d_qk: int | None = None,
               d_v: int = 512, dtype="bf16", num_sms: int = 0) -> int:
    """Bytes of the plan buffer for this problem shape (num_sms = 0: the current device's SM count; d_qk
    None: the one built with d_v, 576 for 512 and 320 for 256)."""
    problem = _layout.sizing_problem(batch, s_q, h_q, h_kv=h_kv, d_qk=d_qk, d_v=d_v, page_size=page_size,
                                     q_dtype=_layout.dtype_code_of(dtype))
    return _C.buffer_sizes(problem, num_sms)[0]


def workspace_bytes(batch: int, s_q: int, h_q: int, *, h_kv: int = 1, page_size: int = 64, d_qk: int | None = None,
                    d_v: int = 512, dtype="bf16", num_sms: int = 0) -> int:
    """Bytes of the decode workspace for this problem shape (it does not depend on the KV length)."""
    problem = _layout.sizing_problem(batch, s_q, h_q, h_kv=h_kv, d_qk=d_qk, d_v=d_v, page_size=page_size,
                                     q_dtype=_layout.dtype_code_of(dtype))
    return _C.buffer_sizes(problem, num_sms)[1]


def check_device(device: int = -1) -> None:
    """Raises NoDeviceError unless the CUDA device (-1: the current one) can run etap (compute capability 9.0)."""
    if device < 0:
        device = _torch.cuda.current_device() if _torch is not None and _torch.cuda.is_available() else 0
    _C.check_device(device)


_TORCH_API = ("decode", "plan", "merge_states", "empty_plan", "empty_workspace")

if _torch is not None:
    from etap._api import decode, empty_plan, empty_workspace, merge_states, plan  # noqa: F401
else:
    def __getattr__(name):
        if name in _TORCH_API or name in ("flash_mla", "flash_mla_legacy", "bench"):
            raise ImportError(f"etap.{name} needs PyTorch, which is not importable here; "
                              "etap._C, the exceptions and plan_bytes/workspace_bytes work without it")
        raise AttributeError(f"module 'etap' has no attribute {name!r}")
