"""The experiment scripts run end to end (``--quick``) and write what they promise."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from experiments import mmd_workloads, verify_identity
from experiments.measure import peak_extra_memory

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_verify_identity_quick_writes_csv_and_figures(tmp_path, paper_images):
    verify_identity.main(["--quick", "--no-memory", "--output", str(tmp_path)])
    for name in ("identity.csv", "routes.csv", "rel_error.png", "rel_error.pdf", "route_time.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    with (tmp_path / "identity.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    real = [r for r in rows if r["source"].startswith("vgg19_caffe:")]
    taps = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "conv4_2", "relu4_2", "relu5_1")
    assert {r["source"] for r in real} == {f"vgg19_caffe:{t}" for t in taps}
    assert any(r["M_F"] != r["M_S"] for r in real)
    for row in rows:
        assert float(row["rel_error"]) <= (1e-10 if row["dtype"] == "float64" else 1e-4), row
    with (tmp_path / "routes.csv").open() as fh:
        routes = list(csv.DictReader(fh))
    assert all(float(r["kernel_seconds"]) > 0 and float(r["moment_seconds"]) > 0 for r in routes)


def test_peak_memory_sees_a_large_allocation():
    """The measurement behind route_memory.png: a kernel route at M=4096 forms 2048² blocks (16 MiB each)."""
    kernel_peak = peak_extra_memory(mmd_workloads.random_samples, mmd_workloads.kernel_route, 8, 4096, 4096)
    moment_peak = peak_extra_memory(mmd_workloads.random_samples, mmd_workloads.moment_route, 8, 4096, 4096)
    assert kernel_peak > 16 * 2**20
    assert moment_peak < kernel_peak / 4
    samples = mmd_workloads.random_samples(8, 100, 80)
    torch.testing.assert_close(mmd_workloads.kernel_route(samples), mmd_workloads.moment_route(samples))


def test_verify_identity_cancellation_sweep_and_no_silent_overwrite(tmp_path):
    """The ε sweep shows the kernel route's error growing faster than the Gram route's as F → S, the
    condition-aware check holding throughout, and a second run refusing to overwrite the first."""
    verify_identity.main(["--quick", "--no-memory", "--no-real", "--output", str(tmp_path)])
    for name in ("cancellation.csv", "cancellation.png", "cancellation.pdf", "route_time.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    with (tmp_path / "cancellation.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {float(r["eps"]) for r in rows} == set(verify_identity.CANCELLATION_EPS)

    def err(route, dtype, eps):
        (row,) = [r for r in rows if (r["route"], r["dtype"], float(r["eps"])) == (route, dtype, eps)]
        return float(row["rel_error"])

    for dtype in ("float32", "float64"):
        assert err("kernel", dtype, 1e-6) > 10 * err("gram", dtype, 1e-6)
        assert err("kernel", dtype, 1e-6) > 100 * err("kernel", dtype, 1e-2)
    assert all(r["identity_holds"] == "True" for r in rows if r["route"] == "kernel")
    with pytest.raises(SystemExit):
        verify_identity.main(["--quick", "--no-memory", "--no-real", "--output", str(tmp_path)])


def test_experiments_build_pretrained_encoders_unless_given_weights(monkeypatch, tmp_path):
    """``weights=None`` means a random network; the experiments must ask for the default weights."""
    import adain.encoders
    from experiments import optimize

    asked = []

    def fake_build(name, *, weights=adain.encoders.DEFAULT_WEIGHTS, **kw):
        asked.append(weights)
        raise RuntimeError("stop here")

    monkeypatch.setattr(adain.encoders, "build_encoder", fake_build)
    monkeypatch.setattr(optimize, "build_encoder", fake_build)
    with pytest.raises(RuntimeError, match="stop here"):
        list(verify_identity.real_feature_rows(32, "vgg19_caffe", None))
    config = optimize.load_config(REPO / "experiments" / "configs" / "optimize_quick.toml")
    with pytest.raises(RuntimeError, match="stop here"):
        optimize.run(config, output=tmp_path / "run", log=lambda *a: None)
    assert asked == [adain.encoders.DEFAULT_WEIGHTS, adain.encoders.DEFAULT_WEIGHTS]
