"""Cross-evaluation (experiments.evaluate) and the comparison script (experiments.compare)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

import mmd
from adain.encoders import build_encoder
from experiments.compare import main
from experiments.evaluate import CrossEvaluation, cross_evaluate, heatmap_norm, plot_heatmap
from experiments.optimize import load_config
from experiments.runs import ConfigError

QUICK_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "compare_quick.toml"
FULL_CONFIG = QUICK_CONFIG.with_name("compare.toml")
LAYERS = {"s2": 0.5, "s4": 0.3, "s8": 0.2}
# Methods whose objectives are near-identical (gram = mmd_poly2 exactly; poly2 with c > 0 adds lower-order
# terms): with a finite L-BFGS budget any of them may land lowest on the others' losses, so for these the
# own score is only required to be within GRAM_FAMILY_RTOL of the row minimum.
GRAM_FAMILY = {"gram", "mmd_poly2", "mmd_poly2_c1"}
GRAM_FAMILY_RTOL = 0.05


def _losses() -> dict[str, mmd.StyleLoss]:
    return {
        "gram": mmd.style_loss("gram"),
        "mmd_poly2": mmd.style_loss("mmd", kernel=mmd.kernels.polynomial(degree=2, c=0.0)),
        "mmd_linear": mmd.style_loss("mmd", kernel=mmd.kernels.linear()),
        "meanstd": mmd.style_loss("meanstd"),
    }


def test_cross_evaluate_anchors_and_identity(tmp_path) -> None:
    """The style image scores 0 on every style loss, the content image (the reference) 1 on every style
    loss and 0 on content; gram and mmd-poly2 rows agree (the identity)."""
    torch.manual_seed(0)  # only the random initialisation of this test network
    encoder = build_encoder("mobilenet_v2", weights=None).double().eval()
    g = torch.Generator().manual_seed(1)
    content = torch.rand(3, 32, 32, generator=g, dtype=torch.float64)
    style = torch.rand(3, 32, 32, generator=g, dtype=torch.float64) ** 2
    outputs = {"content": content, "style": style, "mix": 0.5 * (content + style)}
    ev = cross_evaluate(encoder, outputs, _losses(), style, content, LAYERS, "s8")
    assert ev.losses == ("gram", "mmd_poly2", "mmd_linear", "meanstd", "content")
    assert ev.summed.shape == (5, 3) and set(ev.per_layer) == set(LAYERS)
    torch.testing.assert_close(ev.summed[:4, 0], torch.ones(4, dtype=torch.float64))
    assert ev.summed[:4, 1].abs().max() < 1e-8 and float(ev.summed[4, 0]) == 0.0
    torch.testing.assert_close(ev.summed[0], ev.summed[1], rtol=1e-6, atol=1e-12)
    for values in ev.per_layer.values():
        torch.testing.assert_close(values[:, 0], torch.ones(4, dtype=torch.float64))
    rows = ev.rows("r")
    assert len(rows) == 3 * (5 + 4 * len(LAYERS))
    paths = plot_heatmap(ev, tmp_path / "heat", title="t", layers=["s2"])
    assert all(p.stat().st_size > 0 for p in paths)
    texture = cross_evaluate(encoder, {"style": style}, _losses(), style, None, LAYERS)
    assert texture.losses == tuple(_losses()) and texture.summed.abs().max() < 1e-8


def test_configs_load(paper_images) -> None:
    full, quick = load_config(FULL_CONFIG), load_config(QUICK_CONFIG, quick=True)
    assert quick.size < full.size and quick.transfer.iterations < full.transfer.iterations
    assert {m.spec["name"] for m in quick.methods} == {"gram", "mmd", "meanstd"}


def _fast_network_config(tmp_path: Path) -> Path:
    """The quick config on MobileNetV2, the fast option: the pipeline test needs no VGG-19, and "each
    method wins its own loss" needs runs close to convergence, which 20 steps reach on this network."""
    text = QUICK_CONFIG.read_text()
    for old, new in (
        ('name = "vgg19_caffe_normalised"', 'name = "mobilenet_v2"'),
        ('content_layer = "conv4_2"', 'content_layer = "s16"'),
        (
            "style_layers = { relu1_1 = 0.2, relu2_1 = 0.2, relu3_1 = 0.2, relu4_1 = 0.2, relu5_1 = 0.2 }",
            "style_layers = { s2 = 0.25, s4 = 0.25, s8 = 0.25, s16 = 0.25 }",
        ),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "compare_quick_mobilenet.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_quick_compare_writes_every_artefact_and_each_method_wins_its_own_loss(
    tmp_path, paper_images, mobilenet_weights
) -> None:
    out = tmp_path / "run"
    config_path = _fast_network_config(tmp_path)
    assert main(["--config", str(config_path), "--quick", "--output", str(out)]) == 0
    config = load_config(config_path, quick=True)
    jobs = [f"{c.stem}__{s.stem}" for c, s in config.pairs] + [f"texture__{s.stem}" for s in config.textures]
    methods = [m.name for m in config.methods]
    assert (out / "config.toml").read_text() == config_path.read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["script"] == "experiments.compare"
    for key in ("python", "torch", "device", "seed", "git_commit", "settings", "methods", "evaluation"):
        assert key in manifest
    assert "evaluation" in manifest["timings_s"] and "total" in manifest["timings_s"]
    for name in ("metrics.csv", "metrics.json", "history.json", "evaluation.csv", "evaluation.json"):
        assert (out / name).stat().st_size > 0
    stems = ["grid", "time"] + [f"{kind}_{job}" for job in jobs for kind in ("loss", "heatmap")]
    for stem in stems:
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{stem}.{ext}").stat().st_size > 0, stem
    with open(out / "evaluation.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["layer"] == "sum"]
    assert len(rows) == len(jobs) * len(methods) * (len(methods) + 1) - len(config.textures) * len(methods)
    for job in jobs:
        table = {(r["eval_loss"], r["output"]): float(r["value"]) for r in rows if r["run"] == job}
        for method in methods:
            own = table[(method, method)]
            best = min(table[(method, other)] for other in methods)
            assert own < 1.0, (job, method, own)  # improved on its own loss relative to the reference
            if method in GRAM_FAMILY:
                assert own <= best * (1 + GRAM_FAMILY_RTOL), (job, method, own, best)
            else:
                assert own == best, (job, method, own, best)
            assert table[("gram", method)] == pytest.approx(table[("mmd_poly2", method)], rel=1e-4)


def _decoder_config(tmp_path: Path, paper_images, decoders: str) -> Path:
    text = QUICK_CONFIG.read_text()
    text = text.replace('root = "../shared/data/adain-paper"', f'root = "{paper_images.content.parent}"')
    text = text.replace('textures = ["style/brushstrokes.jpg"]', "textures = []")
    meanstd = '[methods.meanstd]\nstyle_loss = { name = "meanstd" }\n'
    text = text[: text.index("[methods.gram]")] + meanstd + decoders
    path = tmp_path / "with_decoders.toml"
    path.write_text(text)
    return path


def test_trained_decoders_are_extra_columns(tmp_path, paper_images, mobilenet_weights) -> None:
    from adain.decoders import build_decoder
    from adain.modelfile import save_model_file

    torch.manual_seed(0)
    decoder = build_decoder("vgg19_caffe_normalised")
    model_file = save_model_file(tmp_path / "dec.pth", decoder, encoder_name="vgg19_caffe_normalised")
    config_path = _decoder_config(tmp_path, paper_images, f'[decoders]\nrandom_decoder = "{model_file}"\n')
    out = tmp_path / "run"
    assert main(["--config", str(config_path), "--quick", "--iterations", "2", "--output", str(out)]) == 0
    job = "chicago__asheville"
    assert (out / "images" / job / "random_decoder.png").stat().st_size > 0
    with open(out / "evaluation.csv") as fh:
        outputs = {r["output"] for r in csv.DictReader(fh) if r["layer"] == "sum"}
    assert outputs == {"meanstd", "random_decoder"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert {(r["method"], r["loss"]) for r in metrics} >= {("random_decoder", "decoder")}
    assert json.loads((out / "manifest.json").read_text())["decoders"] == {"random_decoder": str(model_file)}

    missing = _decoder_config(tmp_path, paper_images, '[decoders]\nx = "no/such/file.pth"\n')
    with pytest.raises(ConfigError, match=r"decoders\.x.*not found"):
        load_config(missing)
    clash = _decoder_config(tmp_path, paper_images, f'[decoders]\nmeanstd = "{model_file}"\n')
    with pytest.raises(ConfigError, match="also methods"):
        load_config(clash)


def test_evaluator_and_optimiser_draw_the_same_texture_reference() -> None:
    """One function draws the noise image: the optimiser starts textures from it and the evaluator
    normalises by it, so the optimiser's starting image scores exactly 1 under every loss."""
    from adain.encoders import build_encoder
    from adain.gatys import OptimizeSettings, optimize_image, texture_reference

    torch.manual_seed(0)
    encoder = build_encoder("vgg19", weights=None)
    style = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    settings = OptimizeSettings(
        style_layers={"relu1_1": 1.0, "relu2_1": 1.0}, init="noise", iterations=0, parametrisation="clamp",
        seed=3, size=(32, 32),
    )  # fmt: skip
    start = optimize_image(encoder, mmd.build_style_loss("gram"), style, None, settings).image
    assert torch.equal(start, texture_reference((32, 32), 3, like=style)[0])
    losses = {"gram": mmd.build_style_loss("gram"), "meanstd": mmd.build_style_loss("meanstd")}
    layers = dict(settings.style_layers)
    scores = cross_evaluate(encoder, {"start": start}, losses, style, None, layers, seed=3)
    torch.testing.assert_close(scores.summed, torch.full_like(scores.summed, 2.0))  # 1 per layer, 2 layers
    other = cross_evaluate(encoder, {"start": start}, losses, style, None, layers, seed=4)
    assert not torch.allclose(other.summed, scores.summed)


def test_heatmaps_draw_negative_unbiased_estimates_below_zero_not_clamped(tmp_path: Path) -> None:
    """The linear-time MMD² is unbiased and can be negative: its cell keeps its value on a symmetric-log
    scale (below every positive cell), instead of a clamp to 1e-8 that spans eight decades."""
    from matplotlib.colors import LogNorm, SymLogNorm

    positive = torch.tensor([[0.5, 0.02], [1.2, 0.9]])
    assert isinstance(heatmap_norm(positive), LogNorm)
    assert heatmap_norm(positive).vmin == pytest.approx(0.02)
    signed = torch.tensor([[0.5, -0.355], [1.2, 0.02]])
    norm = heatmap_norm(signed)
    assert isinstance(norm, SymLogNorm) and norm.vmin == pytest.approx(-0.355)
    assert norm.linthresh == pytest.approx(0.02)
    assert float(norm(-0.355)) < float(norm(0.0)) < float(norm(0.02)) < float(norm(1.2))
    # the positive cells keep more contrast than a clamp at 1e-8 left them
    clamped = (math.log10(1.2) - math.log10(0.5)) / (math.log10(1.2) + 8)
    assert float(norm(1.2)) - float(norm(0.5)) > 1.4 * clamped
    evaluation = CrossEvaluation(("mmd_linear_time", "content"), ("a", "b"), signed, {}, signed)
    paths = plot_heatmap(evaluation, tmp_path / "signed")
    assert all(p.stat().st_size > 0 for p in paths)


def test_line_and_bar_plots_keep_negative_estimates_on_a_symlog_axis(tmp_path: Path, monkeypatch) -> None:
    """A log axis silently drops values ≤ 0; the per-layer bars and the Pareto plot switch to a
    symmetric-log axis when an unbiased estimator went negative, and keep the log axis otherwise."""
    import experiments.evaluate as evaluate

    assert evaluate.axis_scale([0.5, 0.02]) == ("log", {})
    assert evaluate.axis_scale([0.5, -0.355, 0.02]) == ("symlog", {"linthresh": 0.02})
    assert evaluate.axis_scale([-0.1, 0.0]) == ("symlog", {"linthresh": 0.1})
    scales: list[str] = []
    saved = evaluate.save_figure
    monkeypatch.setattr(
        evaluate,
        "save_figure",
        lambda fig, stem: scales.extend(ax.get_yscale() for ax in fig.axes) or saved(fig, stem),
    )

    def rows(low: float) -> list[dict]:
        return [
            dict(
                encoder="e",
                pair=f"c{p}__s",
                seed=seed,
                style_weight=10.0,
                eval_loss=loss,
                output=out,
                layer=layer,
                value=value,
            )
            for p in range(2)
            for seed in range(2)
            for out in ("a", "b")
            for loss, layer, value in (
                ("mmd_linear_time", "sum", low + 0.01 * p + 0.02 * seed if out == "b" else 0.4 + 0.01 * seed),
                ("mmd_linear_time", "s2", low + 0.01 * seed if out == "b" else 0.3),
                ("content", "sum", 0.2 + 0.01 * p + 0.03 * seed),
            )
        ]

    for low, expected in ((-0.3, "symlog"), (0.05, "log")):
        scales.clear()
        evaluate.plot_per_layer(rows(low), "e", 10.0, tmp_path / "per_layer")
        evaluate.plot_pareto(evaluate.summarise(rows(low)), "e", tmp_path / "pareto")
        assert scales == [expected, expected]
