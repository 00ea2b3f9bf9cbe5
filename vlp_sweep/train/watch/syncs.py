"""Counting device-to-host synchronisations on any device, the CPU included.

On a GPU a read of a tensor's value (``.item()``, ``.tolist()``, ``.cpu()``, ``bool(t)``, a shape that
depends on values such as ``nonzero`` or boolean indexing) stalls the host until the device has caught up:
the host can no longer run ahead and queue the next kernels. ``torch.cuda.set_sync_debug_mode`` reports
them on a GPU; :class:`SyncCounter` counts the same calls on any device (on the CPU they cost nothing, but
the same code on a GPU would stall), so that a test on the CPU can hold the training step at zero.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

# Tensor methods and functions that read values back to the host, or size their output by the values.
_READS = {"item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__", "nonzero",
          "argwhere", "unique", "unique_consecutive", "masked_select"}


def _name(func: Any) -> str:
    return str(getattr(func, "__name__", func))


def _is_read(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    if name in _READS:
        return True
    if name == "to":  # from the device to the host (device-generic code moving CPU tensors to the CPU is not)
        dev = kwargs.get("device", args[1] if len(args) > 1 else None)
        src = args[0].device.type if args and isinstance(args[0], torch.Tensor) else "cpu"
        return isinstance(dev, (str, torch.device)) and torch.device(dev).type == "cpu" and src != "cpu"
    if name == "__getitem__" and len(args) > 1:  # boolean-mask indexing: the output size is the mask's count
        idx = args[1] if isinstance(args[1], tuple) else (args[1],)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in idx)
    if name == "repeat_interleave":  # with tensor repeats and no output_size, the total is read back
        return len(args) > 1 and isinstance(args[1], torch.Tensor) and "output_size" not in kwargs
    return False


class SyncCounter(TorchFunctionMode):
    """``with SyncCounter() as c: ...`` then ``c.total`` and ``c.calls`` (name -> count)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        name = _name(func)
        if _is_read(name, args, kwargs):
            self.calls[name] += 1
        return func(*args, **kwargs)
