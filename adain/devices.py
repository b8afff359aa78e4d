"""Turning ``--device`` and ``--precision`` strings into a :class:`torch.device` and a concrete precision."""

from __future__ import annotations

import warnings

import torch

__all__ = [
    "CPU_BF16_SLOWDOWN",
    "PRECISION_CHOICES",
    "PrecisionWarning",
    "cpu_bf16_speedup",
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

#: AVX512-BF16 without AMX is native but not reliably faster, so ``auto`` measures it
#: (:func:`cpu_bf16_speedup`). Decoder training, 2 threads, batch 8, 128² crops, ``--channels-last
#: --cache-images`` (``python -m experiments.bench_train --batch-size 8 --crop 128 --no-port --precision
#: bf16``): on a Xeon that exposes AVX512-BF16 and AVX512-FP16 but hides AMX, 2.98 images/s in fp32 against
#: 2.22 in bf16 (0.75×); on an AMD EPYC with AVX512-BF16, 2.69 against 5.22 (1.94×).
CPU_AVX512_BF16_ONLY = (
    "0.75× the speed of fp32 on one CPU with AVX512-BF16 but no AMX and 1.94× on another in our measurements"
)

#: ``auto`` takes bf16 on an AVX512-BF16 CPU without AMX when :func:`cpu_bf16_speedup` is at least this.
BF16_MIN_SPEEDUP = 1.3

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
    fp32; AVX512-BF16 alone was slower on one CPU and faster on another (:data:`CPU_AVX512_BF16_ONLY`)."""
    return "amx_bf16" in _cpu_flags(cpuinfo_text)


def _cuda_bf16(device: torch.device) -> bool:
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.cuda.get_device_capability(index) >= (8, 0)  # Ampere and later compute bf16 natively


def cpu_bf16_speedup(*, batch: int = 2, channels: int = 128, size: int = 48, repeats: int = 3) -> float:
    """How many times faster a VGG-like 3×3 convolution's forward and backward pass runs under bf16
    autocast than in fp32 on this CPU (median of ``repeats`` timings each, after one warm-up).

    About half a second with the defaults on 2 cores. It is what ``auto`` asks on a CPU whose flags say
    AVX512-BF16 but not AMX, where the answer differs between CPUs (:data:`CPU_AVX512_BF16_ONLY`).

    Args:
        batch, channels, size: the probe's input, ``(batch, channels, size, size)``, and its conv's
            ``channels → channels`` width.
        repeats: timed passes per precision.
    """
    import statistics
    import time

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, generator=generator)
    weight = (torch.randn(channels, channels, 3, 3, generator=generator) * 0.05).requires_grad_(True)

    def one_pass(bf16: bool) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = torch.nn.functional.conv2d(torch.relu(x), weight, padding=1)
            y = torch.nn.functional.conv2d(torch.relu(y), weight, padding=1)
        y.float().square().mean().backward()
        weight.grad = None
        return time.perf_counter() - start

    times = {}
    for bf16 in (False, True):
        one_pass(bf16)
        times[bf16] = statistics.median(one_pass(bf16) for _ in range(repeats))
    return times[False] / times[True]


def resolve_precision(requested: str, device: torch.device | str, *, cpuinfo_text: str | None = None) -> str:
    """The concrete precision (``"fp32"``, ``"bf16"`` or ``"fp16"``) to run on ``device``.

    ``"auto"`` gives bf16 where the hardware computes it natively and fast (a CUDA GPU of compute capability
    ≥ 8.0, or a CPU with AMX) and fp32 elsewhere: bf16 emulated on an AVX2-only CPU is much slower than
    fp32. On a CPU with AVX512-BF16 but no AMX, bf16 was slower on one machine and faster on another
    (:data:`CPU_AVX512_BF16_ONLY`), so there ``auto`` times a probe (:func:`cpu_bf16_speedup`, about half a
    second) and takes bf16 when it is at least :data:`BF16_MIN_SPEEDUP` times faster. An
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
        native = cpu_has_native_bf16(cpuinfo_text)
        fast = cpu_has_amx_bf16(cpuinfo_text) or (
            requested == "auto" and native and cpu_bf16_speedup() >= BF16_MIN_SPEEDUP
        )
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
