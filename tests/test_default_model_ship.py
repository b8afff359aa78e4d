"""experiments.default_model_ship: a decoder ships (float16) only with its own report meeting the goal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adain.decoders import build_decoder
from adain.modelfile import load_decoder, read_model_file, save_model_file
from experiments.default_model_ship import ShipRefused, report_medians, ship_model
from experiments.runs import file_sha256

GOAL = {"style_ratio_max": 0.3, "content_ratio_max": 0.8}
ENCODER = "mobilenet_v2"  # the smallest decoder; the shipping path does not depend on the architecture


def _model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model_file(
        tmp_path / "ema.pth", build_decoder(ENCODER), encoder_name=ENCODER, config={"trained_iterations": 7}
    )


def _report(tmp_path: Path, model: Path, style: float, content: float, digest: str | None = None) -> Path:
    report = tmp_path / "report"
    report.mkdir(exist_ok=True)
    (report / "summary.csv").write_text(
        "table,method,metric,median,low,high,n\n"
        f"all pairs,adain,style_ratio,{style},{style - 0.05},{style + 0.05},88\n"
        f"all pairs,adain,content_ratio,{content},{content - 0.02},{content + 0.02},88\n"
        "all pairs,gatys,style_ratio,0.1,0.09,0.11,4\n"
    )
    digest = digest or file_sha256(model)
    (report / "run.csv").write_text(f"key,value\nmodel,{model}\nmodel_sha256,{digest}\n")
    return report


def test_a_model_meeting_the_goal_is_written_in_float16_and_loads_as_the_same_decoder(tmp_path: Path) -> None:
    model = _model(tmp_path)
    report = _report(tmp_path, model, 0.29, 0.61)
    out = tmp_path / "pkg" / "default.pth"
    shipped = ship_model(model, report, out, GOAL)
    assert shipped["style_ratio_median"] == 0.29 and shipped["content_ratio_high"] == pytest.approx(0.63)
    written = read_model_file(out)
    assert written.encoder_name == ENCODER and written.config["trained_iterations"] == 7
    assert written.config["shipped"]["source_sha256"] == file_sha256(model)
    assert all(v.dtype == torch.float16 for v in written.decoder_state.values() if v.is_floating_point())
    assert out.stat().st_size < 0.6 * model.stat().st_size
    original, loaded = load_decoder(model), load_decoder(out)
    for (name, a), b in zip(original.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert b.dtype == a.dtype, name  # loaded into the float32 module
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("style", "content", "words"),
    [(0.31, 0.6, "style_ratio 0.310 > 0.3"), (0.2, 0.81, "content_ratio 0.810 > 0.8")],
)
def test_a_model_missing_the_goal_is_refused_and_nothing_is_written(
    tmp_path: Path, style: float, content: float, words: str
) -> None:
    model = _model(tmp_path)
    out = tmp_path / "default.pth"
    with pytest.raises(ShipRefused, match=words):
        ship_model(model, _report(tmp_path, model, style, content), out, GOAL)
    assert not out.exists()


def test_a_report_of_another_model_or_an_existing_output_is_refused(tmp_path: Path) -> None:
    model = _model(tmp_path)
    with pytest.raises(ShipRefused, match=r"not .*ema\.pth"):
        ship_model(model, _report(tmp_path, model, 0.2, 0.6, digest="0" * 64), tmp_path / "a.pth", GOAL)
    out = tmp_path / "b.pth"
    out.write_bytes(b"keep me")
    report = _report(tmp_path, model, 0.2, 0.6)
    with pytest.raises(ShipRefused, match="exists; pass --overwrite"):
        ship_model(model, report, out, GOAL)
    assert out.read_bytes() == b"keep me"
    ship_model(model, report, out, GOAL, overwrite=True)
    assert read_model_file(out).encoder_name == ENCODER


def test_report_medians_names_the_file_when_rows_are_missing(tmp_path: Path) -> None:
    with pytest.raises(ShipRefused, match=r"summary\.csv: no such file"):
        report_medians(tmp_path)
    (tmp_path / "summary.csv").write_text("table,method,metric,median,low,high,n\n")
    with pytest.raises(ShipRefused, match=r"summary\.csv: no 'all pairs' row .*content_ratio"):
        report_medians(tmp_path)


def test_the_config_names_the_issue_goal() -> None:
    from experiments.default_model import DEFAULT_CONFIG, load_config

    assert load_config(DEFAULT_CONFIG)["ship"] == GOAL
