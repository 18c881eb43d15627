"""A stand-in for the few PyTorch APIs the torch layer uses, for machines without PyTorch.

Fake tensors carry a shape, strides, a dtype, a device and a made-up (aligned) address; nothing is
allocated. With it, test_plumbing.py drives etap's torch layer down to the binding, where the library
validates every address, stride and size it was handed and stops at the device check: a wrong argument
order or count, or a stride the layer computed wrongly, shows up as a different error.
"""

from __future__ import annotations

import itertools
import math
import sys
import types


class dtype:  # noqa: N801 (torch's spelling)
    def __init__(self, name, itemsize):
        self.name, self.itemsize = name, itemsize

    def __repr__(self):
        return f"torch.{self.name}"


bfloat16, float16, float32, float64 = dtype("bfloat16", 2), dtype("float16", 2), dtype("float32", 4), dtype("float64", 8)
int32, int64, int8, uint8 = dtype("int32", 4), dtype("int64", 8), dtype("int8", 1), dtype("uint8", 1)
float8_e4m3fn = dtype("float8_e4m3fn", 1)


class device:  # noqa: N801
    def __init__(self, kind, index=None):
        if isinstance(kind, device):
            kind, index = kind.type, kind.index
        elif isinstance(kind, str) and ":" in kind:
            kind, index = kind.split(":")[0], int(kind.split(":")[1])
        self.type, self.index = kind, (0 if kind == "cuda" and index is None else index)

    def __repr__(self):
        return f"{self.type}:{self.index}" if self.type == "cuda" else self.type


_addresses = itertools.count(1)


class _Storage:
    def __init__(self, nbytes):
        self._nbytes = nbytes

    def nbytes(self):
        return self._nbytes


class Tensor:
    def __init__(self, shape, dtype=float32, device_="cuda", strides=None, storage_elements=None, offset=0,
                 base_address=None):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.device = device(device_)
        if strides is None:
            strides, step = [], 1
            for size in reversed(self.shape):
                strides.insert(0, step)
                step *= max(size, 1)
        self._strides = tuple(strides)
        span = 1 + sum((s - 1) * st for s, st in zip(self.shape, self._strides) if s > 0)
        self._storage = storage_elements if storage_elements is not None else offset + span
        self._offset = offset
        self._base = base_address if base_address is not None else next(_addresses) << 32

    def stride(self, dim=None):
        return self._strides if dim is None else self._strides[dim]

    def dim(self):
        return len(self.shape)

    def numel(self):
        return math.prod(self.shape)

    @property
    def nbytes(self):
        return self.numel() * self.dtype.itemsize

    def get_device(self):
        return self.device.index if self.device.type == "cuda" else -1

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    def data_ptr(self):
        return self._base + self._offset * self.dtype.itemsize

    def storage_offset(self):
        return self._offset

    def untyped_storage(self):
        return _Storage(self._storage * self.dtype.itemsize)

    def is_contiguous(self):
        return self._strides == Tensor(self.shape)._strides

    def new_empty(self, shape, dtype=None):
        return Tensor(shape, self.dtype if dtype is None else dtype, self.device)

    def view_of(self, shape, strides, offset=0):
        """A view of this tensor's storage (what slicing or unsqueeze would give)."""
        return Tensor(shape, self.dtype, repr(self.device), strides, self._storage, self._offset + offset, self._base)


def _shape(args):
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def empty(*shape, dtype=float32, device="cuda"):
    return Tensor(_shape(shape), dtype, device)


zeros = empty


def full(shape, value, dtype=float32, device="cuda"):
    return Tensor(shape, dtype, device)


class _Stream:
    cuda_stream = 0


cuda = types.SimpleNamespace(current_device=lambda: 0, set_device=lambda index: None, is_available=lambda: True,
                             current_stream=lambda device=None: _Stream())
compiler = types.SimpleNamespace(is_compiling=lambda: False, assume_constant_result=lambda fn: fn)


class _CustomOp:
    def __init__(self, fn):
        self._fn = fn

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    def register_fake(self, fn):
        return fn


library = types.SimpleNamespace(custom_op=lambda name, mutates_args=(), **kw: (lambda fn: _CustomOp(fn)))
ops = types.SimpleNamespace()
__version__ = "fake"


def install():
    """Makes `import torch` give this module (call before importing etap)."""
    sys.modules["torch"] = sys.modules[__name__]
