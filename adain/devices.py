"""Turning ``--device`` and ``--precision`` strings into a :class:`torch.device` and a concrete precision."""

from __future__ import annotations

import warnings

import torch

__all__ = [
    "CPU_BF16_SLOWDOWN",
    "PRECISION_CHOICES",
    "PrecisionWarning",
    "cpu_has_amx_bf16",
    "cpu_has_native_bf16",
    "read_cpuinfo",
    "resolve_device",
    "resolve_precision",
]


def resolve_device(text: str) -> torch.device:
    """``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …

    Raises:
        ValueError: not a device name, or CUDA asked for where there is none; the message says what to use.
    """
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"not a device: {text!r} (use cpu, cuda, cuda:1, … or auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {text}: CUDA is not available on this machine (use --device cpu or auto)")
    return device


# ---- precision -------------------------------------------------------------------------------------------

#: ``--precision`` choices: ``"auto"`` plus the concrete precisions of :data:`adain.model.PRECISIONS`.
PRECISION_CHOICES: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")

#: Measured on an AVX2-only CPU, where bf16 autocast is emulated: a 512×768 MobileNetV2 stylization took
#: 22.8 s in bf16 against 2.7 s in fp32 (and the issue's 512² run 29 s against 3.3 s).
CPU_BF16_SLOWDOWN = "about 9× slower than fp32 in our measurement on an AVX2-only CPU"

_NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})

#: Measured on a Xeon that exposes AVX512-BF16 (and AVX512-FP16) but not AMX, 2 threads, VGG-19 decoder
#: training at batch 8 on 128² crops (``python -m experiments.bench_train --crop 128 --no-port --precision
#: fp32`` then ``bf16``): 2.98 images/s in fp32 against 2.22 in bf16; against the port at 256², 0.57 against
#: 0.41. AVX512-BF16 alone computes bf16 natively but not faster, so ``auto`` asks for AMX on a CPU.
CPU_AVX512_BF16_ONLY = "0.75× the speed of fp32 in our measurement on a CPU with AVX512-BF16 but no AMX"

#: Measured on a 2-core machine with AMX (``amx_bf16``), same setting (``python -m experiments.bench_train
#: --batch-size 8 --crop 128 --warmup 2 --timed 5``, ``notes/figures/default_model/bench_train_amx.txt``):
#: 3.56 images/s in fp32, 4.13 with ``--channels-last --cache-images``, 12.25 with those in bf16 (3.44×);
#: against the port at 256², 0.51 against 1.29 (2.53×). This is why ``auto`` means bf16 on AMX.


class PrecisionWarning(UserWarning):
    """A precision was asked for that this device runs slowly (e.g. bf16 on a CPU without native bf16)."""


def read_cpuinfo() -> str:
    """The text of ``/proc/cpuinfo``; empty where there is no such file (e.g. macOS or Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def _cpu_flags(cpuinfo_text: str | None) -> set[str]:
    """The ``flags`` of ``/proc/cpuinfo`` (read from the file if ``cpuinfo_text`` is ``None``; no file, e.g.
    on macOS or Windows, gives no flags)."""
    if cpuinfo_text is None:
        cpuinfo_text = read_cpuinfo()
    flags: set[str] = set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return flags


def cpu_has_native_bf16(cpuinfo_text: str | None = None) -> bool:
    """Whether the CPU computes bf16 natively: an ``amx_bf16`` or ``avx512_bf16`` flag in ``/proc/cpuinfo``.

    Args:
        cpuinfo_text: the text of ``/proc/cpuinfo`` (read from the file if ``None``; no file, e.g. on
            macOS or Windows, counts as no native bf16).
    """
    return bool(_NATIVE_BF16_FLAGS & _cpu_flags(cpuinfo_text))


def cpu_has_amx_bf16(cpuinfo_text: str | None = None) -> bool:
    """Whether the CPU has AMX bf16 tiles (``amx_bf16`` in ``/proc/cpuinfo``), where bf16 is faster than
    fp32; AVX512-BF16 alone was slower (:data:`CPU_AVX512_BF16_ONLY`)."""
    return "amx_bf16" in _cpu_flags(cpuinfo_text)


def _cuda_bf16(device: torch.device) -> bool:
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.cuda.get_device_capability(index) >= (8, 0)  # Ampere and later compute bf16 natively


def resolve_precision(requested: str, device: torch.device | str, *, cpuinfo_text: str | None = None) -> str:
    """The concrete precision (``"fp32"``, ``"bf16"`` or ``"fp16"``) to run on ``device``.

    ``"auto"`` gives bf16 where the hardware computes it natively and fast (a CUDA GPU of compute capability
    ≥ 8.0, or a CPU with AMX) and fp32 elsewhere: bf16 emulated on an AVX2-only CPU is much slower than
    fp32, and on a CPU with AVX512-BF16 but no AMX it was slower too (:data:`CPU_AVX512_BF16_ONLY`). An
    explicit ``"bf16"`` on a CPU without native bf16 is kept but warns
    (:class:`PrecisionWarning`) with the measured cost; other explicit values are returned as they are.

    Args:
        requested: one of :data:`PRECISION_CHOICES`.
        device: where the networks run.
        cpuinfo_text: ``/proc/cpuinfo`` text for :func:`cpu_has_native_bf16` (read from the file if
            ``None``).

    Raises:
        ValueError: an unknown precision.
    """
    if requested not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}; got {requested!r}")
    device = torch.device(device)
    if device.type == "cuda":
        native = fast = _cuda_bf16(device)
    elif device.type == "cpu":
        native, fast = cpu_has_native_bf16(cpuinfo_text), cpu_has_amx_bf16(cpuinfo_text)
    else:
        native = fast = False
    if requested == "auto":
        return "bf16" if fast else "fp32"
    if requested == "bf16" and device.type == "cpu" and not native:
        warnings.warn(
            "bf16 on a CPU without AMX or AVX512-BF16 is emulated: "
            f"{CPU_BF16_SLOWDOWN}; use --precision fp32 (or auto)",
            PrecisionWarning,
            stacklevel=2,
        )
    return requested
