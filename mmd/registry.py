"""Registries of kernels and style losses, and the one spec → loss function.

Adding a kernel or a style loss is one decorated definition (as torchvision's ``register_model``)::

    @register_kernel("laplace")
    def laplace(sigma: float = 1.0) -> Kernel: ...

    @register_style_loss("sliced_wasserstein")
    @dataclass(frozen=True)
    class SlicedWasserstein(StyleLoss): ...

Every consumer (the trainer, the Gatys optimiser, the evaluator, the TOML configs, both CLIs) builds its
loss from one spec, a plain mapping (what a TOML ``[style_loss]`` table or a checkpoint holds)::

    {"name": "mmd", "kernel": {"name": "gaussian", "sigma": "median", "scales": [0.5, 1, 2]}}
    {"name": "mmd", "estimator": "linear", "kernel": {"name": "gaussian", "sigma": "rms", "scales": [0.7071]}}
    {"name": "gram"}
    {"name": "meanstd", "eps": 1e-5}

:func:`build_style_loss` turns it into a :class:`~mmd.losses.StyleLoss`; :class:`StyleLossSpec` is the
frozen, validated form. Names are listed by :func:`kernel_names` and :func:`style_loss_names` (CLI choices
come from there). The registries are filled when :mod:`mmd` is imported; nothing is registered at run time.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "StyleLossSpec",
    "build_kernel",
    "build_style_loss",
    "construct_style_loss",
    "kernel_names",
    "register_kernel",
    "register_style_loss",
    "style_loss_names",
]

F = TypeVar("F", bound=Callable[..., Any])

_KERNELS: dict[str, Callable[..., Any]] = {}
_STYLE_LOSSES: dict[str, Callable[..., Any]] = {}
#: old spelling → registered name, accepted with a DeprecationWarning (older checkpoints)
_KERNEL_ALIASES: dict[str, str] = {}


def register_kernel(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Register ``factory(**params) -> Kernel`` under ``name`` (and deprecated ``aliases``)."""

    def decorate(factory: F) -> F:
        if name in _KERNELS:
            raise ValueError(f"kernel {name!r} is registered twice")
        _KERNELS[name] = factory
        for alias in aliases:
            _KERNEL_ALIASES[alias] = name
        return factory

    return decorate


def register_style_loss(name: str) -> Callable[[F], F]:
    """Register a style loss ``cls(**params) -> StyleLoss`` under ``name``."""

    def decorate(cls: F) -> F:
        if name in _STYLE_LOSSES:
            raise ValueError(f"style loss {name!r} is registered twice")
        _STYLE_LOSSES[name] = cls
        return cls

    return decorate


def kernel_names() -> tuple[str, ...]:
    """Registered kernel names, sorted."""
    return tuple(sorted(_KERNELS))


def style_loss_names() -> tuple[str, ...]:
    """Registered style-loss names, sorted."""
    return tuple(sorted(_STYLE_LOSSES))


def canonical_kernel_name(name: str) -> str:
    """``name``, or the registered name of a deprecated alias (with a ``DeprecationWarning``).

    Raises:
        ValueError: an unknown name (the message lists the registered ones).
    """
    if name in _KERNEL_ALIASES:
        new = _KERNEL_ALIASES[name]
        warnings.warn(f"kernel name {name!r} is deprecated; use {new!r}", DeprecationWarning, stacklevel=3)
        return new
    if name not in _KERNELS:
        raise ValueError(f"unknown kernel {name!r}; choose one of {', '.join(kernel_names())}")
    return name


def kernel_defaults(name: str) -> dict[str, Any]:
    """The default parameters of a registered kernel factory (so that specs compare in one canonical form:
    ``{"name": "polynomial"}`` and ``{"name": "polynomial", "degree": 2}`` are the same kernel)."""
    factory = _KERNELS[canonical_kernel_name(name)]
    return {
        p.name: _plain(p.default)
        for p in inspect.signature(factory).parameters.values()
        if p.default is not inspect.Parameter.empty
    }


def _plain(value: Any) -> Any:
    """Lists for tuples, recursively (so that specs compare and serialise the same way)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def build_kernel(spec: Mapping[str, Any] | str) -> Any:
    """A kernel from ``{"name": ..., **params}`` (or a bare name).

    Raises:
        ValueError: no or unknown name, or parameters the kernel rejects.
    """
    params = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = params.pop("name", None)
    if not isinstance(name, str):
        raise ValueError(f"a kernel spec needs a 'name' (one of {', '.join(kernel_names())}); got {spec!r}")
    name = canonical_kernel_name(name)
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        return _KERNELS[name](**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for kernel {name!r}: {exc}") from None


@dataclass(frozen=True)
class StyleLossSpec:
    """A validated style-loss spec: ``name`` and its parameters (a kernel as a nested spec).

    ``StyleLossSpec.from_dict({"name": "mmd", "kernel": {"name": "polynomial", "degree": 2}})``;
    :meth:`to_dict` gives the plain mapping back in canonical form (registered kernel name, the kernel's
    defaults filled in, lists for tuples), so two specs of the same loss compare equal; :meth:`build`
    gives the loss.
    Construction builds the loss once, so a bad spec fails here, not at the first training step.
    """

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        self.build()  # unknown name or bad parameters: ValueError

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | str) -> StyleLossSpec:
        """From ``{"name": ..., **params}`` (or a bare name). Raises ``ValueError`` for a bad spec."""
        data: dict[str, Any] = {"name": spec} if isinstance(spec, str) else dict(spec)
        name = data.pop("name", None)
        if not isinstance(name, str):
            names = ", ".join(style_loss_names())
            raise ValueError(f"a style-loss spec needs a 'name' ({names}); got {spec!r}")
        if isinstance(data.get("kernel"), (str, Mapping)):
            kernel: dict[str, Any] = (
                {"name": data["kernel"]} if isinstance(data["kernel"], str) else dict(data["kernel"])
            )
            if isinstance(kernel.get("name"), str):
                kernel["name"] = canonical_kernel_name(kernel["name"])
                kernel = {"name": kernel["name"], **kernel_defaults(kernel["name"]), **kernel}
            data["kernel"] = kernel
        return cls(name, tuple(sorted(_plain(data).items())))

    def to_dict(self) -> dict[str, Any]:
        """The plain mapping (TOML / checkpoint form)."""
        return {"name": self.name, **{k: _plain(v) for k, v in self.params}}

    def build(self) -> Any:
        """The :class:`~mmd.losses.StyleLoss` this spec names."""
        return construct_style_loss(self.name, dict(self.params))


def construct_style_loss(name: str, params: Mapping[str, Any]) -> Any:
    """``cls(**params)`` of the registered style loss ``name``; a ``kernel`` given as a spec is built.

    Raises:
        ValueError: unknown name or parameters the loss rejects.
    """
    if name not in _STYLE_LOSSES:
        raise ValueError(f"unknown style loss {name!r}; choose one of {', '.join(style_loss_names())}")
    params = dict(params)
    if isinstance(params.get("kernel"), (str, Mapping)):
        params["kernel"] = build_kernel(params["kernel"])
    try:
        return _STYLE_LOSSES[name](**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for style loss {name!r}: {exc}") from None


def build_style_loss(spec: Mapping[str, Any] | str | StyleLossSpec) -> Any:
    """The one spec → style loss function (see the module doc). Raises ``ValueError`` for a bad spec."""
    if not isinstance(spec, StyleLossSpec):
        spec = StyleLossSpec.from_dict(spec)
    return spec.build()
