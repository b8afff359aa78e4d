"""Convergence criterion (adain.gatys), repeats over seeds and style weights (experiments.optimize), and the
intervals and ties of the evaluation (experiments.intervals, experiments.evaluate.summarise)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

import mmd
from adain.encoders import build_encoder
from adain.gatys import OptimizeSettings, has_converged, optimize_image, relative_decrease
from experiments.evaluate import summarise
from experiments.intervals import paired_difference, row_verdict, t_interval
from experiments.optimize import expand_jobs, load_config
from experiments.runs import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
LAYERS = {"s2": 0.5, "s4": 0.5}


@pytest.fixture(scope="module")
def encoder64() -> torch.nn.Module:
    torch.manual_seed(0)  # only the random initialisation of this test network
    return build_encoder("mobilenet_v2", weights=None).double()


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.rand(3, 24, 24, generator=g, dtype=torch.float64), torch.rand(3, 24, 24, generator=g) ** 2


# ---- convergence -----------------------------------------------------------------------------------------


def test_relative_decrease_and_has_converged() -> None:
    totals = [10.0, 8.0, 7.0, 6.93]
    assert relative_decrease(totals, 3) == pytest.approx(0.307)
    assert relative_decrease(totals, 1) == pytest.approx(0.01)
    assert relative_decrease(totals, 4) is None  # not enough history
    assert has_converged(totals, 1, 0.02) and not has_converged(totals, 1, 0.005)
    assert not has_converged(totals, 3, 0.02)  # over the longer window it still falls by 31 %
    assert not has_converged(totals, 1, 0.0)  # tolerance 0: never
    assert has_converged([1.0, 1.5], 1, 1e-3)  # a rise is "no decrease"
    assert not has_converged([1.0, float("nan")], 1, 1e-3)
    with pytest.raises(ValueError, match="window"):
        relative_decrease(totals, 0)


def test_optimiser_stops_at_the_criterion_and_records_why(encoder64) -> None:
    content, style = _images()
    base = dict(style_layers=LAYERS, content_layer="s4", optimizer="adam", lr=0.05, iterations=40)
    full = optimize_image(encoder64, mmd.style_loss("gram"), style, content, OptimizeSettings(**base))
    assert full.stop_reason == "max_iterations" and full.steps == 40 and len(full.history["total"]) == 41
    tol, window = 0.06, 3
    # where the criterion first holds on the full run's history is where the stopped run must stop
    first = next(i for i in range(len(full.history["total"]))
                 if has_converged(full.history["total"][: i + 1], window, tol))  # fmt: skip
    assert 0 < first < 40, "test needs a run that levels off before the cap"
    stopped = optimize_image(
        encoder64, mmd.style_loss("gram"), style, content,
        OptimizeSettings(**base, tolerance=tol, window=window),
    )  # fmt: skip
    # checked before each step on the images recorded so far: it stops one step after that image
    assert stopped.stop_reason == "converged" and stopped.steps == first + 1
    assert stopped.history["total"] == pytest.approx(full.history["total"][: first + 2], rel=1e-12)
    assert relative_decrease(stopped.history["total"][:-1], window) < tol
    assert relative_decrease(stopped.history["total"][:-2], window) >= tol


def test_init_jitter_makes_seeds_differ_and_is_deterministic(encoder64) -> None:
    content, style = _images()

    def run(seed: int, jitter: float) -> torch.Tensor:
        s = OptimizeSettings(style_layers=LAYERS, content_layer="s4", optimizer="adam", lr=0.05,
                             iterations=2, seed=seed, init_jitter=jitter)  # fmt: skip
        return optimize_image(encoder64, mmd.style_loss("meanstd"), style, content, s).image

    assert torch.equal(run(0, 0.0), run(1, 0.0))  # content init without jitter ignores the seed
    assert torch.equal(run(0, 0.05), run(0, 0.05))
    assert not torch.equal(run(0, 0.05), run(1, 0.05))


@pytest.mark.parametrize("kwargs", [{"tolerance": -1.0}, {"window": 0}, {"init_jitter": -0.1}])
def test_bad_convergence_settings(kwargs) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        OptimizeSettings(style_layers=LAYERS, content_layer="s4", **kwargs)


# ---- intervals and ties ------------------------------------------------------------------------------------


def test_t_interval_matches_the_t_table() -> None:
    interval = t_interval([1.0, 2.0, 3.0])
    assert interval.mean == 2.0 and interval.n == 3
    assert interval.half_width == pytest.approx(4.302652729911275 / math.sqrt(3))  # t_{0.975, 2} · 1 / √3
    assert math.isinf(t_interval([5.0]).half_width)  # one repeat: no interval
    with pytest.raises(ValueError, match="non-finite"):
        t_interval([1.0, float("nan")])


def test_row_verdict_wins_ties_and_pairing() -> None:
    clear = row_verdict({"a": [1.0, 1.1, 0.9], "b": [2.0, 2.1, 1.9]})
    assert clear.winner == "a" and clear.tied == ()
    noisy = row_verdict({"a": [0.0533, 0.07, 0.04], "b": [0.0535, 0.05, 0.06]})
    assert noisy.lowest == "a" and noisy.winner is None and noisy.tied == ("b",)
    # pairs on very different scales, but b is consistently about 0.01 worse: a paired win only
    a = [1.0, 10.0, 100.0, 0.5]
    b = [x + d for x, d in zip(a, [0.010, 0.012, 0.009, 0.011], strict=True)]
    assert row_verdict({"a": a, "b": b}).winner == "a"
    assert t_interval(b).contains(t_interval(a).mean)  # the unpaired intervals overlap
    assert paired_difference(b, a).low > 0
    assert row_verdict({"a": [1.0], "b": [2.0]}).winner is None  # one repeat never wins
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0], [1.0, 2.0])


def test_summarise_labels_best_and_ties() -> None:
    rows = []
    for seed, (x, y, z) in enumerate([(1.0, 2.0, 1.05), (1.1, 2.1, 0.95), (0.9, 1.9, 1.2)]):
        for output, value in (("a", x), ("b", y), ("c", z)):
            rows.append(dict(encoder="e", pair="p__q", seed=seed, style_weight=10.0, eval_loss="gram",
                             output=output, layer="sum", value=value))  # fmt: skip
            rows.append({**rows[-1], "layer": "s2", "value": 99.0})  # per-layer rows are ignored
    summary = {r["output"]: r for r in summarise(rows)}
    assert summary["a"]["n"] == 3 and summary["a"]["kind"] == "transfer"
    assert (
        summary["a"]["verdict"] == "tie"
        and summary["c"]["verdict"] == "tie"
        and summary["b"]["verdict"] == ""
    )
    clear = summarise([r for r in rows if r["output"] != "c"])
    assert {r["output"]: r["verdict"] for r in clear} == {"a": "best", "b": ""}


# ---- configs: seeds × style weights, evaluation network ----------------------------------------


def _config(tmp_path: Path, paper_images, extra_top: str = "", extra_optimize: str = "") -> Path:
    root = paper_images.content.parent
    text = f"""seed = 0
{extra_top}
[encoder]
name = "mobilenet_v2"
[images]
root = "{root}"
size = 32
pairs = [["content/chicago.jpg", "style/asheville.jpg"]]
textures = ["style/brushstrokes.jpg"]
[optimize]
content_layer = "s8"
style_layers = {{ s2 = 0.5, s4 = 0.5 }}
iterations = 2
init_jitter = 0.02
{extra_optimize}
[texture]
init = "noise"
[evaluation]
encoder = "mobilenet_v2"
style_layers = {{ s4 = 0.5, s8 = 0.5 }}
content_layer = "s16"
label = "mobilenet_v2_deep"
[methods.gram]
style_loss = {{ name = "gram" }}
[methods.meanstd]
style_loss = {{ name = "meanstd" }}
"""
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_jobs_are_pairs_by_seeds_by_style_weights(tmp_path, paper_images) -> None:
    config = load_config(_config(tmp_path, paper_images, "seeds = [0, 1]", "style_weights = [1.0, 100.0]"))
    names = [job.name for job in expand_jobs(config)]
    assert names == [
        "chicago__asheville__seed0__w1", "chicago__asheville__seed0__w100",
        "chicago__asheville__seed1__w1", "chicago__asheville__seed1__w100",
        "texture__brushstrokes__seed0", "texture__brushstrokes__seed1",
    ]  # fmt: skip
    jobs = expand_jobs(config)
    assert [(j.seed, j.style_weight) for j in jobs[:4]] == [(0, 1.0), (0, 100.0), (1, 1.0), (1, 100.0)]
    assert config.evaluation is not None and config.evaluation.content_layer == "s16"
    single = load_config(_config(tmp_path, paper_images))
    assert [job.name for job in expand_jobs(single)] == ["chicago__asheville", "texture__brushstrokes"]


@pytest.mark.parametrize(
    ("top", "optimize", "key"),
    [("seeds = [0, 0]", "", "seeds"), ("seeds = 3", "", "seeds"),
     ("", "style_weights = [-1.0]", "style_weights"), ("", "tolerance = -1.0", "optimize")],
)  # fmt: skip
def test_bad_repeat_keys_name_file_and_key(tmp_path, paper_images, top, optimize, key) -> None:
    path = _config(tmp_path, paper_images, top, optimize)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and key in str(info.value)


def test_evaluation_network_needs_its_own_label(tmp_path, paper_images) -> None:
    path = _config(tmp_path, paper_images)
    path.write_text(path.read_text().replace('label = "mobilenet_v2_deep"', 'label = "mobilenet_v2"'))
    with pytest.raises(ConfigError, match=r"evaluation\.label") as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.slow
def test_compare_with_repeats_sweep_and_a_second_network(tmp_path, paper_images, mobilenet_weights) -> None:
    from experiments.compare import main

    path = _config(tmp_path, paper_images, "seeds = [0, 1]", "style_weights = [1.0, 100.0]")
    out = tmp_path / "run"
    assert main(["--config", str(path), "--output", str(out)]) == 0
    with open(out / "summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    with open(out / "evaluation.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["encoder"] for r in rows} == {"mobilenet_v2", "mobilenet_v2_deep"}
    layers = {r["layer"] for r in rows}
    assert {"s2", "s4", "s8", "sum"} <= layers  # both networks' layers were scored
    transfer = [r for r in summary if r["kind"] == "transfer"]
    assert {float(r["style_weight"]) for r in transfer} == {1.0, 100.0}
    assert all(int(r["n"]) == 2 for r in summary)  # one pair × two seeds
    assert len(summary) == 2 * (2 * 2 * 3 + 2 * 2)  # networks × (weights × outputs × rows + texture)
    assert all(r["verdict"] in ("best", "tie", "") for r in summary)
    metrics = json.loads((out / "metrics.json").read_text())
    assert {m["stop_reason"] for m in metrics} == {"max_iterations"} and {m["steps"] for m in metrics} == {2}
    for stem in ("pareto_mobilenet_v2", "layers_mobilenet_v2", "pareto_mobilenet_v2_deep"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 0
