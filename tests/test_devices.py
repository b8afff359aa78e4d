"""``--device`` strings, shared by ``adain stylize`` and ``adain train``."""

from __future__ import annotations

import pytest
import torch

from adain.devices import resolve_device


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not a device: 'gpu9'"):
        resolve_device("gpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")


AVX2_ONLY = (
    "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx avx2 fma\n"
)
SAPPHIRE = "processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
# A Sapphire Rapids VM that hides AMX: bf16 is native but measured slower than fp32 (adain.devices).
AVX512_BF16_NO_AMX = "processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 avx512_fp16\n"


def test_cpu_native_bf16_is_read_from_the_flags() -> None:
    from adain.devices import cpu_has_native_bf16

    assert not cpu_has_native_bf16(AVX2_ONLY)
    assert cpu_has_native_bf16(SAPPHIRE)
    assert cpu_has_native_bf16("flags : avx2 avx512_bf16\n")
    assert not cpu_has_native_bf16("model name : amx_bf16 in a name is not a flag\nflags : avx2\n")
    assert not cpu_has_native_bf16("")


def test_cpu_amx_is_read_from_the_flags() -> None:
    from adain.devices import cpu_has_amx_bf16

    assert cpu_has_amx_bf16(SAPPHIRE)
    assert not cpu_has_amx_bf16(AVX512_BF16_NO_AMX)
    assert not cpu_has_amx_bf16(AVX2_ONLY)
    assert not cpu_has_amx_bf16("model name : amx_bf16 in a name is not a flag\nflags : avx2\n")


def test_resolve_precision_auto_and_the_slow_bf16_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    import adain.devices
    from adain.devices import PrecisionWarning, resolve_precision

    def no_probe() -> float:
        raise AssertionError("the flags decide here; no timing probe")

    monkeypatch.setattr(adain.devices, "cpu_bf16_speedup", no_probe)
    assert resolve_precision("auto", "cpu", cpuinfo_text=AVX2_ONLY) == "fp32"
    assert resolve_precision("auto", "cpu", cpuinfo_text=SAPPHIRE) == "bf16"
    with pytest.warns(PrecisionWarning, match="9× slower"):
        assert resolve_precision("bf16", "cpu", cpuinfo_text=AVX2_ONLY) == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16", "cpu", cpuinfo_text=SAPPHIRE) == "bf16"
        assert resolve_precision("bf16", "cpu", cpuinfo_text=AVX512_BF16_NO_AMX) == "bf16"  # native: silent
        assert resolve_precision("fp32", "cpu", cpuinfo_text=AVX2_ONLY) == "fp32"
        assert resolve_precision("fp32", "cpu", cpuinfo_text=AVX512_BF16_NO_AMX) == "fp32"  # no probe
    with pytest.raises(ValueError, match="precision must be one of auto"):
        resolve_precision("fp64", "cpu")


@pytest.mark.parametrize(
    ("speedup", "expected"), [(0.75, "fp32"), (1.2, "fp32"), (1.3, "bf16"), (1.94, "bf16")]
)
def test_auto_on_avx512_bf16_without_amx_follows_the_measured_speedup(
    monkeypatch: pytest.MonkeyPatch, speedup: float, expected: str
) -> None:
    """bf16 was 0.75× fp32 on one such CPU and 1.94× on another: ``auto`` times a probe there and takes bf16
    from :data:`adain.devices.BF16_MIN_SPEEDUP` (1.3) up."""
    import adain.devices
    from adain.devices import resolve_precision

    calls: list[float] = []
    monkeypatch.setattr(adain.devices, "cpu_bf16_speedup", lambda: calls.append(speedup) or speedup)
    assert resolve_precision("auto", "cpu", cpuinfo_text=AVX512_BF16_NO_AMX) == expected
    assert calls == [speedup]


def test_cpu_bf16_speedup_times_both_precisions() -> None:
    """The probe really runs: a positive, finite ratio of two timings (whatever this CPU's answer is)."""
    import math

    from adain.devices import cpu_bf16_speedup

    ratio = cpu_bf16_speedup(batch=1, channels=8, size=8, repeats=1)
    assert math.isfinite(ratio) and ratio > 0
