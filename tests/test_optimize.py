"""Optimisation-based transfer (adain.gatys) and its experiment script (experiments.optimize)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import mmd
from adain.encoders import build_encoder
from adain.gatys import OptimizeSettings, optimize_image, total_variation
from experiments.optimize import load_config, main
from experiments.runs import ConfigError

QUICK_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "optimize_quick.toml"
FULL_CONFIG = QUICK_CONFIG.with_name("optimize.toml")
LAYERS = {"s2": 0.5, "s4": 0.3, "s8": 0.2}


@pytest.fixture(scope="module")
def encoder64() -> torch.nn.Module:
    """A random-weights MobileNetV2 (it has batch norms) in float64."""
    torch.manual_seed(0)  # only the random initialisation of this test network
    return build_encoder("mobilenet_v2", weights=None).double()


def _images(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    content = torch.rand(3, 32, 32, generator=g, dtype=dtype)
    style = torch.rand(3, 28, 36, generator=g, dtype=dtype) ** 2  # a different distribution and size
    return content, style


@pytest.mark.parametrize(
    ("optimizer", "lr", "normalise", "scale"),
    [("adam", 0.05, "none", None), ("lbfgs", 1.0, "none", None), ("adam", 0.05, "reference", 1.0)],
)
def test_gram_and_mmd_poly2_follow_the_same_trajectory(encoder64, optimizer, lr, normalise, scale) -> None:
    content, style = _images()
    settings = OptimizeSettings(
        style_layers=LAYERS, content_layer="s8", style_weight=1e3, tv_weight=0.1, optimizer=optimizer,
        lr=lr, iterations=4, normalise=normalise, seed=3,
    )  # fmt: skip
    gram = optimize_image(encoder64, mmd.style_loss("gram"), style, content, settings)
    poly2 = mmd.style_loss("mmd", kernel=mmd.kernels.polynomial(2), scale=scale)  # scale=None: 1/(4N²)
    other = optimize_image(encoder64, poly2, style, content, settings)
    assert gram.image.dtype == torch.float64
    assert (gram.image - content).abs().max() > 1e-4  # it did move
    assert (gram.image - other.image).abs().max() <= 1e-10
    assert gram.history.keys() == other.history.keys()
    for key, values in gram.history.items():
        assert len(values) == settings.iterations + 1
        diff = max(abs(a - b) for a, b in zip(values, other.history[key], strict=True))
        assert diff <= 1e-10 * max(1.0, max(abs(v) for v in values)), key
    assert gram.history["total"][-1] < gram.history["total"][0]


def test_texture_synthesis_has_no_content_term(encoder64) -> None:
    _, style = _images()
    settings = OptimizeSettings(
        style_layers=LAYERS, init="noise", optimizer="adam", lr=0.1, iterations=3, size=(24, 20)
    )
    result = optimize_image(encoder64, mmd.style_loss("meanstd"), style, None, settings)
    assert settings.texture
    assert result.image.shape == (3, 24, 20)
    assert 0 <= float(result.image.min()) and float(result.image.max()) <= 1
    assert set(result.history["content"]) == {0.0}
    assert "content" not in result.normalisers or result.normalisers["content"] == 1.0
    assert result.history["style"][-1] < result.history["style"][0]


def test_reference_normalisation_makes_every_layer_start_at_one(encoder64) -> None:
    content, style = _images()
    losses = [
        mmd.style_loss("gram"),
        mmd.style_loss("meanstd"),
        mmd.style_loss("mmd", kernel=mmd.kernels.linear()),
        mmd.style_loss("mmd", kernel=mmd.kernels.gaussian("median", scales=(0.5, 1.0, 2.0))),
    ]
    settings = OptimizeSettings(
        style_layers=LAYERS, content_layer="s8", style_weight=7.0, iterations=0, parametrisation="clamp"
    )
    for loss in losses:
        result = optimize_image(encoder64, loss, style, content, settings)
        for layer in LAYERS:
            assert result.history[f"style/{layer}"][0] == pytest.approx(1.0, rel=1e-12), (loss, layer)
        assert result.history["total"][0] == pytest.approx(7.0, rel=1e-12)  # Σ w_l = 1, content 0


def test_deterministic_seeded_and_pixels_stay_in_range(encoder64) -> None:
    content, style = _images()
    state = torch.random.get_rng_state()
    runs = []
    for seed in (0, 0, 1):
        settings = OptimizeSettings(
            style_layers=LAYERS, content_layer="s8", init="noise", optimizer="adam", lr=0.3, iterations=3,
            parametrisation="clamp", seed=seed,
        )  # fmt: skip
        runs.append(optimize_image(encoder64, mmd.style_loss("gram"), style, content, settings).image)
    assert torch.equal(torch.random.get_rng_state(), state)  # no global RNG use
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])
    assert 0 <= float(runs[0].min()) and float(runs[0].max()) <= 1


def test_total_variation() -> None:
    flat = torch.full((2, 3, 5, 6), 0.4)
    assert torch.equal(total_variation(flat), torch.zeros(2))
    stripes = torch.zeros(1, 1, 2, 2)
    stripes[..., 1] = 1.0
    assert total_variation(stripes).item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"style_layers": {}}, "style_layers"),
        ({"style_layers": LAYERS, "init": "content"}, "texture synthesis"),
        ({"style_layers": LAYERS, "content_layer": "s8", "optimizer": "sgd"}, "optimizer"),
        ({"style_layers": LAYERS, "content_layer": "s8", "lr": 0.0}, "lr"),
    ],
)
def test_bad_settings(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        OptimizeSettings(**kwargs)


def test_style_image_as_reference_is_a_clear_error(encoder64) -> None:
    _, style = _images()
    settings = OptimizeSettings(style_layers=LAYERS, content_layer="s8", iterations=1)
    with pytest.raises(ValueError, match="reference image"):
        optimize_image(encoder64, mmd.style_loss("gram"), style, style, settings)


# ---- the config and the script ---------------------------------------------------------------------------


VGG = 'name = "vgg19_caffe_normalised"'
QUICK = "\n[quick]\n"
EVALUATION = '\n[evaluation]\nencoder = "vgg19_caffe"\nstyle_layers = {{ relu1_1 = 1.0 }}\n{}\n'


def _write_config(tmp_path: Path, old: str, new: str) -> Path:
    text = QUICK_CONFIG.read_text()
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('name = "linear"', 'name = "laplace"', "methods.mmd_linear"),
        ('{ name = "meanstd" }', '{ name = "wasserstein" }', "methods.meanstd"),
        ('optimizer = "lbfgs"', 'optimizer = "sgd"', "optimize"),
        ("iterations = 50", "iterations = 50\nbogus = 1", "bogus"),
        ('name = "vgg19_caffe_normalised"', "name = 3", "encoder.name"),
        ("seed = 0\n", "", "seed"),
        ('textures = ["style/brushstrokes.jpg"]', 'textures = ["style/missing.jpg"]', "images"),
        ("[quick]", "[quick\n", "not valid TOML"),
        # encoder options: an option the encoder does not take, a bad value, an encoder without options
        (VGG, VGG + '\npoolng = "avg"', "encoder.poolng"),
        (VGG, VGG + '\npooling = "min"', "encoder.pooling"),
        (VGG, 'name = "mobilenet_v2"\npooling = "avg"', "encoder.pooling"),
        (VGG, 'name = "vgg20"\npooling = "avg"', "encoder.name"),
        (QUICK, EVALUATION.format("pooling = 2") + QUICK, "evaluation.pooling"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, paper_images, old, new, key, capsys) -> None:
    path = _write_config(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and key in str(info.value)
    assert main(["--config", str(path), "--output", str(tmp_path / "run")]) == 2
    assert key in capsys.readouterr().err


def test_encoder_options_reach_the_encoders_and_their_labels(tmp_path, paper_images) -> None:
    """``[encoder] pooling = "avg"`` (and the same key in ``[evaluation]``) is passed to ``build_encoder``
    and recorded in the label that names the network's scores; without options the label is the name."""
    from experiments.compare import networks

    path = _write_config(tmp_path, QUICK, EVALUATION.format('pooling = "avg"') + QUICK)
    path.write_text(path.read_text().replace(VGG, VGG + '\npooling = "avg"'))
    config = load_config(path)
    assert config.encoder_options == {"pooling": "avg"}
    assert config.encoder_label == "vgg19_caffe_normalised+pooling=avg"
    own, other = networks(config)
    assert (own.label, own.options) == ("vgg19_caffe_normalised+pooling=avg", {"pooling": "avg"})
    assert (other.label, other.options) == ("vgg19_caffe+pooling=avg", {"pooling": "avg"})
    assert own.build().pooling == "avg" and other.build().pooling == "avg"
    assert config.build_encoder().pooling == "avg"
    plain = load_config(QUICK_CONFIG)
    assert plain.encoder_options == {} and plain.encoder_label == "vgg19_caffe_normalised"
    assert networks(plain)[0].label == "vgg19_caffe_normalised"
    # a trained decoder runs on its own encoder, which the options would not reach
    decoder = tmp_path / "dec.pth"
    decoder.write_bytes(b"x")
    with_decoder = tmp_path / "with_decoder.toml"
    with_decoder.write_text(path.read_text().replace(QUICK, f'\n[decoders]\nd = "{decoder}"' + QUICK))
    with pytest.raises(ConfigError, match=r"with_decoder.toml: key 'decoders'.*'pooling': 'avg'"):
        load_config(with_decoder)


def test_li_et_al_config_uses_their_pooling_and_bandwidth(paper_images) -> None:
    """Li et al.'s config: unnormalised VGG-19 with average pooling, and their Gaussian bandwidth
    ``exp(-‖x − y‖²/d2)``, d2 the mean squared distance: ``sigma = "rms"`` with scale 1/√2."""
    config = load_config(QUICK_CONFIG.with_name("li_et_al.toml"), quick=True)
    assert (config.encoder, config.encoder_options) == ("vgg19_caffe", {"pooling": "avg"})
    assert config.encoder_label == "vgg19_caffe+pooling=avg"
    (gaussian,) = [m for m in config.methods if m.spec.get("kernel", {}).get("name") == "gaussian"]
    assert gaussian.spec["estimator"] == "linear"
    assert gaussian.loss.kernel.heuristic == "rms"
    assert gaussian.loss.kernel.scales == pytest.approx((2**-0.5,), rel=1e-15)


def test_configs_load(paper_images) -> None:
    for path in (QUICK_CONFIG, FULL_CONFIG):
        config = load_config(path)
        names = [m.name for m in config.methods]
        assert {"gram", "mmd_poly2", "mmd_poly2_c1", "mmd_linear", "mmd_gaussian", "meanstd"} <= set(names)
        assert config.texture.content_layer is None and config.transfer.content_layer is not None
    quick = load_config(QUICK_CONFIG, quick=True, seed=5)
    assert quick.seed == 5 and quick.transfer.seed == 5 and quick.size < load_config(QUICK_CONFIG).size


@pytest.mark.slow
def test_quick_run_writes_every_artefact(tmp_path, paper_images, mobilenet_weights) -> None:
    out = tmp_path / "run"
    argv = [
        "--config",
        str(QUICK_CONFIG),
        "--quick",
        "--iterations",
        "2",
        "--size",
        "48",
        "--output",
        str(out),
    ]
    assert main(argv) == 0
    config = load_config(QUICK_CONFIG, quick=True)
    jobs = [f"{c.stem}__{s.stem}" for c, s in config.pairs] + [f"texture__{s.stem}" for s in config.textures]
    methods = [m.name for m in config.methods]
    assert (out / "config.toml").read_text() == QUICK_CONFIG.read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("python", "torch", "device", "seed", "timings_s", "settings", "methods"):
        assert key in manifest
    assert manifest["seed"] == 0 and manifest["settings"]["transfer"]["iterations"] == 2
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(jobs) * len(methods) == len(json.loads((out / "metrics.json").read_text()))
    history = json.loads((out / "history.json").read_text())
    for job in jobs:
        assert set(history[job]) == set(methods)
        assert all(len(h["total"]) == 3 for h in history[job].values())
        for method in methods:
            assert (out / "images" / job / f"{method}.png").stat().st_size > 0
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"loss_{job}.{ext}").stat().st_size > 0
    for ext in ("png", "pdf"):
        assert (out / "figures" / f"grid.{ext}").stat().st_size > 0
    finals = {(r["run"], r["method"]): float(r["final_total"]) for r in rows}
    job = jobs[0]
    assert finals[(job, "gram")] == pytest.approx(finals[(job, "mmd_poly2")], rel=1e-3)  # float32
