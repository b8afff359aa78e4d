"""Tests of :class:`adain.model.AdaINModel` (random networks, small images) and of :mod:`adain.modelfile`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adain.decoders import build_decoder
from adain.encoders import build_encoder
from adain.errors import CheckpointError, ImageTooSmallError
from adain.model import (
    AdaINModel,
    autocast_context,
    context_padding_amounts,
    fit_to_size,
    preserve_color_mode,
)
from adain.modelfile import (
    FORMAT_VERSION,
    build_model,
    load_decoder,
    load_model,
    read_model_file,
    save_model_file,
)
from adain.ops import StyleStats, luminance_only_inputs, resize_masks, transfer_luminance


def _model(name: str, seed: int = 0) -> AdaINModel:
    torch.manual_seed(seed)
    return AdaINModel(build_encoder(name, weights=None), build_decoder(name))


@pytest.fixture(scope="module", params=["vgg19", "vgg19_normalised", "mobilenet_v2"])
def model(request: pytest.FixtureRequest) -> AdaINModel:
    return _model(request.param)


@pytest.fixture(scope="module")
def images() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "content": torch.rand(3, 45, 61, generator=g),  # odd sizes: not a multiple of any stride
        "style_a": torch.rand(3, 70, 38, generator=g),
        "style_b": torch.rand(1, 3, 33, 90, generator=g),
        "mask": (torch.rand(45, 61, generator=g) > 0.5).float(),
    }


MODES = {
    "single": lambda im: ((im["style_a"],), {}),
    "alpha": lambda im: ((im["style_a"],), {"alpha": 0.4}),
    "interpolation": lambda im: (([im["style_a"], im["style_b"]],), {"weights": [1.0, 2.0]}),
    "masks": lambda im: (([im["style_a"], im["style_b"]],), {"masks": [im["mask"], 1 - im["mask"]]}),
    "soft_masks_low_res": lambda im: (
        ([im["style_a"], im["style_b"]],),
        {"masks": [torch.full((5, 7), 0.3), torch.full((9, 4), 0.6)], "weights": [2, 1]},
    ),
    "coral": lambda im: (([im["style_a"], im["style_b"]],), {"preserve_color": "coral", "weights": [1, 1]}),
    "luminance": lambda im: ((im["style_a"],), {"preserve_color": "luminance", "alpha": 0.7}),
    "luminance_masks": lambda im: (
        ([im["style_a"], im["style_b"]],),
        {"preserve_color": "luminance", "masks": [im["mask"], 1 - im["mask"]]},
    ),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_stylize_every_mode_keeps_content_shape(model: AdaINModel, images: dict, mode: str) -> None:
    args, kwargs = MODES[mode](images)
    out = model.stylize(images["content"], *args, **kwargs)
    assert out.shape == images["content"].shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    batched = model.stylize(images["content"][None].expand(2, -1, -1, -1), *args, **kwargs)
    assert batched.shape == (2, *images["content"].shape)
    torch.testing.assert_close(batched[1], out, atol=1e-4, rtol=1e-4)


def test_precomputed_style_stats_give_the_same_output(model: AdaINModel, images: dict) -> None:
    stats = model.encode_style(images["style_a"])
    assert isinstance(stats, StyleStats) and stats.mean.dtype == torch.float32
    c = model.encoder.channels[model.encoder.adain_layer]
    assert stats.mean.shape == stats.std.shape == (1, c, 1, 1)
    direct = model.stylize(images["content"], images["style_a"])
    torch.testing.assert_close(model.stylize(images["content"], stats), direct)
    mixed = model.stylize(images["content"], [stats, images["style_b"]], weights=[3, 1])
    torch.testing.assert_close(
        mixed, model.stylize(images["content"], [images["style_a"], images["style_b"]], weights=[3, 1])
    )
    with pytest.raises(ValueError, match="preserve_color needs the style images"):
        model.stylize(images["content"], stats, preserve_color="coral")


def test_full_mask_equals_single_style_and_alpha_zero_reconstructs() -> None:
    model = _model("vgg19_normalised")
    g = torch.Generator().manual_seed(3)
    content, s1, s2 = (
        torch.rand(3, 40, 48, generator=g),
        torch.rand(3, 32, 32, generator=g),
        torch.rand(3, 50, 20),
    )
    ones = torch.ones(40, 48)
    masked = model.stylize(content, [s1, s2], masks=[ones, torch.zeros(40, 48)])
    torch.testing.assert_close(masked, model.stylize(content, s1), atol=1e-5, rtol=1e-5)
    recon = model.stylize(content, s1, alpha=0.0)
    torch.testing.assert_close(recon, model.decode(model.encode(content[None]), size=(40, 48))[0])


@pytest.mark.parametrize("mode", ["single", "masks", "soft_masks_low_res", "luminance_masks"])
def test_context_padding_stylizes_the_reflected_content_and_crops(
    model: AdaINModel, images: dict, mode: str
) -> None:
    """Padding p = stylizing the content reflected outwards by p on every side, cut back to H × W (masks
    fitted to the content and reflected the same way)."""
    args, kwargs = MODES[mode](images)
    content, p = images["content"], 9
    out = model.stylize(content, *args, **kwargs, context_padding=p)
    assert out.shape == content.shape
    padded = torch.nn.functional.pad(content[None], (p, p, p, p), mode="reflect")[0]
    manual = dict(kwargs)
    if "masks" in kwargs:
        fitted = resize_masks(kwargs["masks"], tuple(content.shape[-2:]))
        manual["masks"] = torch.nn.functional.pad(fitted, (p, p, p, p), mode="reflect")
    if manual.pop("preserve_color", None) == "luminance":  # luminance in, the content's chroma out
        styles = [luminance_only_inputs(content[None], s if s.dim() == 4 else s[None])[1] for s in args[0]]
        grey = luminance_only_inputs(content[None], styles[0])[0]
        grey = torch.nn.functional.pad(grey, (p, p, p, p), mode="reflect")
        expected = model.stylize(grey, styles, **manual)[..., p:-p, p:-p]
        expected = transfer_luminance(expected, content[None])[0]
    else:
        expected = model.stylize(padded, *args, **manual)[:, p:-p, p:-p]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert not torch.equal(out, model.stylize(content, *args, **kwargs))
    torch.testing.assert_close(model.stylize(content, *args, **kwargs, context_padding=0),
                               model.stylize(content, *args, **kwargs))  # fmt: skip


def test_context_padding_is_limited_by_the_image_and_checked() -> None:
    assert context_padding_amounts((45, 61), 32) == (32, 32)
    assert context_padding_amounts((20, 33), 32) == (19, 32)
    assert context_padding_amounts((1, 5), 3) == (0, 3)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="non-negative number of pixels"):
            context_padding_amounts((10, 10), bad)  # type: ignore[arg-type]
    model = _model("vgg19")
    out = model.stylize(torch.rand(3, 24, 30), torch.rand(3, 30, 30), context_padding=64)
    assert out.shape == (3, 24, 30)


def test_fit_to_size_crops_larger_and_resizes_smaller() -> None:
    x = torch.rand(1, 3, 72, 64)
    torch.testing.assert_close(fit_to_size(x, (65, 64)), x[..., :65, :])
    assert fit_to_size(x, (72, 70)).shape == (1, 3, 72, 70)
    assert fit_to_size(x, (72, 64)) is x


def test_model_errors(images: dict) -> None:
    with pytest.raises(ValueError, match="does not fit encoder"):
        AdaINModel(build_encoder("mobilenet_v2", weights=None), build_decoder("vgg19"))
    model = _model("vgg19")
    with pytest.raises(ImageTooSmallError):
        model.stylize(torch.rand(3, 12, 40), images["style_a"])
    with pytest.raises(ValueError, match="alpha"):
        model.stylize(images["content"], images["style_a"], alpha=1.5)
    with pytest.raises(ValueError, match="one mask per style"):
        model.stylize(images["content"], [images["style_a"], images["style_b"]], masks=[images["mask"]])
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        model.stylize(torch.rand(4, 20, 20), images["style_a"])
    with pytest.raises(ValueError, match="preserve_color"):
        preserve_color_mode("hsv")
    with pytest.raises(ValueError, match="precision"):
        autocast_context("cpu", "int8")


def test_bf16_precision_runs_in_float32_output(images: dict) -> None:
    model = _model("mobilenet_v2")
    ref = model.stylize(images["content"], images["style_a"])
    model.precision = "bf16"
    out = model.stylize(images["content"], images["style_a"])
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert (out - ref).abs().max() < 0.1


# ---- model files -----------------------------------------------------------------------------------------


def test_model_file_round_trip(tmp_path: Path) -> None:
    model = _model("mobilenet_v2", seed=5)
    config = {"lr": 1e-4, "style_weight": 10.0, "layers": ["s2", "s4"], "note": None, "nested": {"a": 1}}
    path = save_model_file(tmp_path / "sub" / "m.pth", model, config=config)
    assert [p.name for p in path.parent.iterdir()] == ["m.pth"]  # no temp file left behind
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION and raw["encoder"] == "mobilenet_v2"
    mf = read_model_file(path, encoder_name="mobilenet_v2")
    assert mf.config == config and mf.encoder_name == "mobilenet_v2"
    loaded = load_model(path, encoder_weights=None)
    for k, v in model.decoder.state_dict().items():
        assert torch.equal(loaded.decoder.state_dict()[k], v)
    assert loaded.encoder_name == "mobilenet_v2"
    again = build_model("mobilenet_v2", path, encoder_weights=None)
    assert torch.equal(again.decoder[1].weight, model.decoder[1].weight)


def test_mismatched_model_files_raise_checkpoint_error(tmp_path: Path) -> None:
    good = save_model_file(tmp_path / "good.pth", build_decoder("vgg19"), encoder_name="vgg19")
    with pytest.raises(CheckpointError, match=r"good\.pth.*'vgg19', not 'mobilenet_v2'"):
        load_decoder(good, "mobilenet_v2")

    payload = torch.load(good, weights_only=True)
    cases = {
        "missing.pth": {k: v for k, v in payload.items() if k != "decoder"},
        "shapes.pth": {**payload, "decoder": build_decoder("mobilenet_v2").state_dict()},
        "unknown_encoder.pth": {**payload, "encoder": "resnet"},
        "newer.pth": {**payload, "format_version": FORMAT_VERSION + 1},
        "not_a_model.pth": {"epoch": 3, "state": [1, 2]},
    }
    expected = {
        "missing.pth": "lacks the entries decoder",
        "shapes.pth": "do not fit the vgg19 decoder: missing keys",
        "unknown_encoder.pth": "names encoder 'resnet'",
        "newer.pth": "newer than this code reads",
        "not_a_model.pth": "not an adain model file",
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(CheckpointError, match=expected[name]) as info:
            load_model(tmp_path / name, encoder_weights=None)
        assert name in str(info.value)

    wrong_shape = build_decoder("vgg19").state_dict()
    wrong_shape["28.weight"] = torch.zeros(3, 32, 3, 3)
    torch.save(wrong_shape, tmp_path / "raw.pth")
    with pytest.raises(CheckpointError, match=r"wrong shapes: 28\.weight"):
        load_decoder(tmp_path / "raw.pth", "vgg19")
    with pytest.raises(CheckpointError, match="raw state dict"):
        load_model(tmp_path / "raw.pth", encoder_weights=None)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    (tmp_path / "empty.pth").write_bytes(b"")
    for name, message in [
        ("text.pth", "cannot be read"),
        ("empty.pth", "empty"),
        ("none.pth", "does not exist"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            read_model_file(tmp_path / name)


def test_model_file_config_must_be_plain_data(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"config\['path'\] is a PosixPath"):
        save_model_file(tmp_path / "m.pth", build_decoder("vgg19"), config={"path": tmp_path})
    assert not list(tmp_path.iterdir())
