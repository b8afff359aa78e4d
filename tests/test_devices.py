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


def test_resolve_precision_auto_and_the_slow_bf16_warning() -> None:
    import warnings

    from adain.devices import PrecisionWarning, resolve_precision

    assert resolve_precision("auto", "cpu", cpuinfo_text=AVX2_ONLY) == "fp32"
    assert resolve_precision("auto", "cpu", cpuinfo_text=SAPPHIRE) == "bf16"
    assert resolve_precision("auto", "cpu", cpuinfo_text=AVX512_BF16_NO_AMX) == "fp32"
    with pytest.warns(PrecisionWarning, match="9× slower"):
        assert resolve_precision("bf16", "cpu", cpuinfo_text=AVX2_ONLY) == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16", "cpu", cpuinfo_text=SAPPHIRE) == "bf16"
        assert resolve_precision("bf16", "cpu", cpuinfo_text=AVX512_BF16_NO_AMX) == "bf16"  # native: silent
        assert resolve_precision("fp32", "cpu", cpuinfo_text=AVX2_ONLY) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of auto"):
        resolve_precision("fp64", "cpu")
