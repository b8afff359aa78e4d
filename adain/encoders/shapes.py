"""Spatial size propagation through the leaf modules of a CNN, without running it.

Used to compute the smallest input an encoder accepts for a given tap: the smallest side length for
which every intermediate feature map along the way is non-empty and every padding layer is valid
(reflection padding of ``p`` needs an input longer than ``p``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from torch import nn

__all__ = ["MAX_SEARCHED_SIZE", "min_input_length", "output_length"]

#: Largest side length :func:`min_input_length` tries before giving up.
MAX_SEARCHED_SIZE = 1 << 16

# Modules that never change the spatial size of their input.
_SIZE_PRESERVING: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
)


def _pick(value: int | Sequence[int], axis: int) -> int:
    """The entry of an ``int | (h, w)`` module hyper-parameter for ``axis`` (0 = height, 1 = width)."""
    if isinstance(value, int):
        return value
    return int(value[axis])


def _conv(m: nn.Conv2d, length: int, axis: int) -> int | None:
    k, s, d = _pick(m.kernel_size, axis), _pick(m.stride, axis), _pick(m.dilation, axis)
    if isinstance(m.padding, str):
        p = 0 if m.padding == "valid" else (d * (k - 1)) // 2
    else:
        p = _pick(m.padding, axis)
    if m.padding_mode == "reflect" and p >= length:
        return None
    span = length + 2 * p - d * (k - 1) - 1
    if span < 0:
        return None
    return span // s + 1


def _pool(m: nn.MaxPool2d | nn.AvgPool2d, length: int, axis: int) -> int | None:
    k = _pick(m.kernel_size, axis)
    s = _pick(m.stride if m.stride is not None else m.kernel_size, axis)
    p = _pick(m.padding, axis)
    d = _pick(m.dilation, axis) if isinstance(m, nn.MaxPool2d) else 1
    span = length + 2 * p - d * (k - 1) - 1
    if span < 0:
        return None
    if m.ceil_mode:
        out = math.ceil(span / s) + 1
        # PyTorch drops a last window that would start entirely in the right padding.
        if (out - 1) * s >= length + p:
            out -= 1
    else:
        out = span // s + 1
    return out if out >= 1 else None


def _pad(m: nn.Module, length: int, axis: int) -> int | None:
    left, right, top, bottom = m.padding  # type: ignore[misc]
    before, after = (top, bottom) if axis == 0 else (left, right)
    if isinstance(m, nn.ReflectionPad2d) and max(before, after) >= length:
        return None
    return length + before + after


def _step(m: nn.Module, length: int, axis: int) -> int | None:
    """Side length after one leaf module, or ``None`` where the module would fail or give an empty map."""
    if isinstance(m, _SIZE_PRESERVING):
        return length
    if isinstance(m, nn.Conv2d):
        return _conv(m, length, axis)
    if isinstance(m, nn.MaxPool2d | nn.AvgPool2d):
        return _pool(m, length, axis)
    if isinstance(m, nn.ReflectionPad2d | nn.ZeroPad2d | nn.ConstantPad2d | nn.ReplicationPad2d):
        return _pad(m, length, axis)
    if isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        out = m.output_size if isinstance(m.output_size, int) else m.output_size[axis]
        return length if out is None else int(out)
    raise TypeError(f"cannot propagate spatial sizes through {type(m).__name__}; add a rule to shapes.py")


def output_length(modules: Iterable[nn.Module], length: int, axis: int = 0) -> int | None:
    """Side length of the output of ``modules`` applied in order to an input of side ``length``.

    Args:
        modules: modules in forward order; containers are expanded into their leaves (registration
            order, which is forward order for the sequential networks used here).
        length: input height (``axis=0``) or width (``axis=1``).
        axis: 0 for height, 1 for width.

    Returns:
        The output side length, or ``None`` if some intermediate map would be empty or a padding layer
        would reject its input.
    """
    for module in modules:
        for leaf in module.modules():
            if next(leaf.children(), None) is not None:
                continue
            result = _step(leaf, length, axis)
            if result is None or result < 1:
                return None
            length = result
    return length


def min_input_length(modules: Sequence[nn.Module], axis: int = 0) -> int:
    """Smallest input side length for which :func:`output_length` is valid (at least 1).

    Raises:
        ValueError: if no length up to :data:`MAX_SEARCHED_SIZE` works.
    """
    for length in range(1, MAX_SEARCHED_SIZE + 1):
        if output_length(modules, length, axis) is not None:
            return length
    raise ValueError(f"no input side length up to {MAX_SEARCHED_SIZE} gives a non-empty output")
