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
    rows = [line for line in out.splitlines() if line.startswith("mobilenet_v2")]
    assert [("paper defaults" in r, "--channels-last" in r) for r in rows] == [(True, False), (False, True)]
    assert all(float(r.split()[-4]) > 0 for r in rows)  # images/s
    assert rows[0].endswith("1.00×")  # each row's ratio is to the paper's defaults in fp32


def test_a_lower_precision_is_timed_beside_fp32_with_channels_last() -> None:
    rows = bench_train.encoder_settings("bf16")
    assert [(precision, extra.get("channels_last", False)) for _, _, precision, extra in rows] == [
        ("fp32", False),
        ("fp32", True),
        ("bf16", True),
    ]
    assert len({tag for tag, *_ in rows}) == 3  # each row trains in its own run folder
    assert [precision for _, _, precision, _ in bench_train.encoder_settings("fp32")] == ["fp32", "fp32"]


def test_bench_train_refuses_an_unknown_precision(capsys) -> None:
    with pytest.raises(SystemExit):
        bench_train.main(["--precision", "fp64", "--no-port"])
    assert "invalid choice: 'fp64'" in capsys.readouterr().err
