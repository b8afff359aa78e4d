"""How much memory a stylization needs, and how much there is: the guard ``adain stylize`` runs first.

The peak memory of :meth:`adain.model.AdaINModel.stylize` grows linearly with the content's pixel count
(the decoder's activations at full resolution dominate). :data:`GB_PER_MEGAPIXEL` holds the slope
measured in fp32 on CPU (peak RSS during one stylization minus the RSS before it, for a 1.5:1 content at
0.5 and 2.2 megapixels, random weights), rounded up. bf16/fp16 autocast is counted at
:data:`LOW_PRECISION_FACTOR` times that: emulated bf16 on an AVX2 CPU took 2.2× the fp32 memory (MobileNetV2,
0.39 MP: 0.33 GB against 0.15 GB); on hardware with native bf16 it needs less, and the estimate stays an
upper bound. :func:`available_memory` reads what the process may still use: ``MemAvailable`` from
``/proc/meminfo``, lowered to the cgroup's limit minus its usage where a container sets one (cgroup v2
or v1), or the free memory of a CUDA device.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

__all__ = [
    "GB_PER_MEGAPIXEL",
    "LOW_PRECISION_FACTOR",
    "available_memory",
    "cgroup_memory_left",
    "estimate_stylize_bytes",
    "largest_shorter_side",
    "meminfo_available",
]

_GB = 1e9

#: Peak memory per content megapixel of one fp32 stylization, by decoder family (see the module doc),
#: measured on an AVX2 CPU: VGG-19 decoder 0.36 GB at 0.54 MP and 1.25 GB at 2.16 MP (0.58–0.68 GB/MP);
#: MobileNetV2 decoder 0.18 GB at 0.54 MP and 0.72 GB at 2.16 MP (0.33–0.34 GB/MP).
GB_PER_MEGAPIXEL = {"vgg": 0.7, "mobilenet": 0.35}

#: Memory of a bf16/fp16 run relative to fp32 (the measured CPU emulation; see the module doc).
LOW_PRECISION_FACTOR = 2.5

_CGROUP_V2 = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current"))
_CGROUP_V1 = (
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    Path("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def _gb_per_megapixel(encoder_name: str) -> float:
    for family, gb in GB_PER_MEGAPIXEL.items():
        if encoder_name.startswith(family):
            return gb
    return max(GB_PER_MEGAPIXEL.values())  # an encoder not measured: assume the costliest


def _bytes_per_pixel(encoder_name: str, precision: str) -> float:
    factor = 1.0 if precision == "fp32" else LOW_PRECISION_FACTOR
    return _gb_per_megapixel(encoder_name) * factor * _GB / 1e6


def estimate_stylize_bytes(encoder_name: str, height: int, width: int, precision: str = "fp32") -> int:
    """Upper estimate of the peak memory (bytes) of stylizing one ``height × width`` content."""
    return int(_bytes_per_pixel(encoder_name, precision) * height * width)


def largest_shorter_side(
    encoder_name: str, height: int, width: int, budget: int, precision: str = "fp32"
) -> int:
    """The largest shorter side (pixels) to which a ``height × width`` image can be resized (aspect ratio
    kept) so that :func:`estimate_stylize_bytes` stays within ``budget`` bytes; at least 1."""
    aspect = max(height, width) / min(height, width)
    megapixels = budget / (_bytes_per_pixel(encoder_name, precision) * 1e6)
    return max(1, math.floor(math.sqrt(megapixels * 1e6 / aspect)))


def meminfo_available(meminfo_text: str | None = None) -> int | None:
    """``MemAvailable`` in bytes from ``/proc/meminfo`` (or the text given); ``None`` where unknown."""
    if meminfo_text is None:
        try:
            meminfo_text = Path("/proc/meminfo").read_text(encoding="ascii")
        except OSError:
            return None
    for line in meminfo_text.splitlines():
        if line.startswith("MemAvailable:"):
            fields = line.split()
            return int(fields[1]) * (1024 if fields[2:3] == ["kB"] else 1)
    return None


def cgroup_memory_left(limit_text: str | None = None, usage_text: str | None = None) -> int | None:
    """The cgroup's memory limit minus its usage, in bytes; ``None`` without a limit.

    The texts are those of ``memory.max`` / ``memory.current`` (cgroup v2) or ``memory.limit_in_bytes``
    / ``memory.usage_in_bytes`` (v1); read from ``/sys/fs/cgroup`` when not given.
    """
    if limit_text is None or usage_text is None:
        for limit_file, usage_file in (_CGROUP_V2, _CGROUP_V1):
            try:
                limit_text, usage_text = limit_file.read_text(), usage_file.read_text()
                break
            except OSError:
                continue
        else:
            return None
    limit = limit_text.strip()
    if not limit.isdigit() or int(limit) >= 2**60:  # "max" (v2) or the huge "unlimited" value (v1)
        return None
    usage = usage_text.strip()
    return max(0, int(limit) - (int(usage) if usage.isdigit() else 0))


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes the process can still allocate on ``device``; ``None`` where it cannot be told."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    known = [v for v in (meminfo_available(), cgroup_memory_left()) if v is not None]
    return min(known) if known else None
