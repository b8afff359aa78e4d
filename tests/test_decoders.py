"""Tests of :mod:`adain.decoders`: the VGG decoder is exactly the public PyTorch AdaIN port's, and loads its
``decoder.pth`` key layout; the MobileNetV2 decoder mirrors its encoder's AdaIN layer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from adain.decoders import Decoder, MobileNetV2Decoder, VGGDecoder, build_decoder, decoder_layers
from adain.encoders import build_encoder
from adain.modelfile import load_decoder

# The port's decoder (net.py): conv index → (in, out) channels; 29 modules in all.
PORT_CONVS = {
    1: (512, 256),
    5: (256, 256),
    8: (256, 256),
    11: (256, 256),
    14: (256, 128),
    18: (128, 128),
    21: (128, 64),
    25: (64, 64),
    28: (64, 3),
}
PORT_UPSAMPLES = (3, 16, 23)


def port_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under exactly the keys and shapes of the port's ``decoder.pth``."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for idx, (cin, cout) in PORT_CONVS.items():
        state[f"{idx}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
        state[f"{idx}.bias"] = torch.randn(cout, generator=g) * 0.05
    return state


def test_vgg_decoder_has_the_port_layer_list() -> None:
    dec = build_decoder("vgg19_normalised")
    assert isinstance(dec, VGGDecoder) and len(dec) == 29
    for i, module in enumerate(dec):
        if i in PORT_CONVS:
            cin, cout = PORT_CONVS[i]
            assert isinstance(module, nn.Conv2d)
            assert (module.in_channels, module.out_channels, module.kernel_size) == (cin, cout, (3, 3))
            assert module.padding == (0, 0) and module.stride == (1, 1)
            assert isinstance(dec[i - 1], nn.ReflectionPad2d) and dec[i - 1].padding == (1, 1, 1, 1)
            if i != 28:
                assert isinstance(dec[i + 1], nn.ReLU)
        elif i in PORT_UPSAMPLES:
            assert isinstance(module, nn.Upsample)
            assert module.scale_factor == 2 and module.mode == "nearest"
    assert isinstance(dec[-1], nn.Conv2d)  # no activation after the RGB conv
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in dec.modules())
    expected = {f"{i}.{p}" for i in PORT_CONVS for p in ("weight", "bias")}
    assert set(dec.state_dict()) == expected


def test_port_decoder_state_dict_loads_strict(tmp_path: Path) -> None:
    state = port_state_dict()
    dec = build_decoder("vgg19_normalised")
    dec.load_state_dict(state, strict=True)
    path = tmp_path / "decoder.pth"
    torch.save(state, path)
    loaded = load_decoder(path, "vgg19_normalised")
    for k, v in state.items():
        assert torch.equal(loaded.state_dict()[k], v)
    x = torch.randn(1, 512, 4, 5)
    assert torch.equal(loaded(x), dec(x))


@pytest.mark.parametrize(
    ("name", "channels", "stride"),
    [("vgg19", 512, 8), ("vgg19_normalised", 512, 8), ("mobilenet_v2", 96, 16)],
)
def test_decoder_fits_encoder_and_upsamples_by_stride(name: str, channels: int, stride: int) -> None:
    enc = build_encoder(name, weights=None)
    dec = build_decoder(name)
    assert dec.in_channels == enc.channels[enc.adain_layer] == channels
    assert dec.stride == enc.strides[enc.adain_layer] == stride
    out = dec(torch.randn(2, channels, 3, 5))
    assert out.shape == (2, 3, 3 * stride, 5 * stride)


def test_mobilenet_decoder_layout() -> None:
    dec = build_decoder("mobilenet_v2")
    assert isinstance(dec, MobileNetV2Decoder)
    assert sum(isinstance(m, nn.Upsample) for m in dec) == 4
    assert isinstance(dec[-1], nn.Conv2d) and dec[-1].out_channels == 3
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in dec.modules())


def test_decoder_errors() -> None:
    with pytest.raises(ValueError, match="no decoder for encoder"):
        build_decoder("resnet50")
    with pytest.raises(ValueError, match=r"\[B, 512, h, w\]"):
        build_decoder("vgg19")(torch.randn(1, 96, 4, 4))
    with pytest.raises(ValueError, match="must end with the RGB conv"):
        decoder_layers(8, (16, "U", 4))
    with pytest.raises(ValueError, match="channel count or 'U'"):
        Decoder("x", 8, (16, "D", 3))


@pytest.mark.parametrize("encoder_name", ["vgg19_caffe_normalised", "mobilenet_v2"])
def test_initialisation_preserves_the_signal_through_depth(encoder_name) -> None:
    """He init: every hidden ReLU's mean output stays within 4× of the first one's and almost every channel
    is alive (PyTorch's default conv init shrinks it ~2.5× per layer: 100× over a VGG decoder); the output
    starts near mid-grey."""
    torch.manual_seed(0)
    decoder = build_decoder(encoder_name)
    h = torch.rand(4, decoder.in_channels, 8, 8) * 2
    means, alive = [], []
    with torch.no_grad():
        for module in decoder:
            h = module(h)
            if isinstance(module, torch.nn.ReLU):
                means.append(float(h.mean()))
                alive.append(float((h.amax((0, 2, 3)) > 0).float().mean()))
    assert max(means) / min(means) < 4, means
    assert min(alive) > 0.8, alive
    assert abs(float(h.mean()) - 0.5) < 0.3 and float(h.std()) < 0.5
