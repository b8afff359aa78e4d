"""``experiments.bench_train``: a tiny end-to-end run prints the precision it resolved and one rate row."""

from __future__ import annotations

import pytest

from experiments import bench_train


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_bench_train_names_the_precision_it_ran(precision, capsys, monkeypatch) -> None:
    import adain.devices

    monkeypatch.setattr(adain.devices, "cpu_has_amx_bf16", lambda text=None: False)
    argv = ["--batch-size", "1", "--crop", "32", "--warmup", "0", "--timed", "1"]
    bench_train.main(
        [*argv, "--encoders", "mobilenet_v2", "--no-port", "--device", "cpu", "--precision", precision]
    )
    out = capsys.readouterr().out
    assert f"32×32 crops, fp32 (--precision {precision})" in out
    row = next(line for line in out.splitlines() if line.startswith("mobilenet_v2"))
    rate = float(row.split()[1])
    assert rate > 0


def test_bench_train_refuses_an_unknown_precision(capsys) -> None:
    with pytest.raises(SystemExit):
        bench_train.main(["--precision", "fp64", "--no-port"])
    assert "invalid choice: 'fp64'" in capsys.readouterr().err
