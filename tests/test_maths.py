"""Tests that catch wrong maths in the AdaIN model and its training, against hand-written references.

* The training losses on fixed tensors equal a transcription of the public PyTorch port's ``Net.forward``
  (``../shared/reference/pytorch-AdaIN/net.py``), written here from reading it: style loss
  ``Σ_l mse(μ_g, μ_s) + mse(σ_g, σ_s)`` over the taps up to the AdaIN layer, content loss
  ``mse(E(g), t)`` against the AdaIN target ``t``.
* ``stylize(c, s)`` equals ``decode(AdaIN(encode(c), stats(s)))`` written out here, and differs from
  ``alpha=0``; interpolation and masks against targets computed by hand on the features.

Each catches a one-line mutation that the rest of the suite missed (issue 12 §3): every style-layer
weight set to 1; the content loss against the content features; the style loss against the content batch;
``alpha`` forced to 0 in ``stylize``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from adain.model import AdaINModel
from adain.modelfile import load_model
from adain.train import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO_ROOT = Path(__file__).resolve().parents[1]

ENCODER = "mobilenet_v2"


# ---- the port's Net, transcribed ------------------------------------------------------------------------


def port_calc_mean_std(feat: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """function.py's calc_mean_std: unbiased variance over positions, plus eps, square root."""
    n, c = feat.shape[:2]
    var = feat.reshape(n, c, -1).var(dim=2) + eps
    return feat.reshape(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def port_adain(content_feat: Tensor, style_feat: Tensor) -> Tensor:
    """function.py's adaptive_instance_normalization."""
    s_mean, s_std = port_calc_mean_std(style_feat)
    c_mean, c_std = port_calc_mean_std(content_feat)
    return (content_feat - c_mean) / c_std * s_std + s_mean


def port_net_forward(
    encoder, decoder, content: Tensor, style: Tensor, layers: list[str]
) -> tuple[Tensor, Tensor]:
    """net.py's Net.forward with alpha = 1, the taps ``layers`` (the last one the AdaIN layer) in place of
    relu1_1 … relu4_1."""
    style_feats = [encoder(style, layers=layers)[k] for k in layers]
    content_feat = encoder(content, layers=layers)[layers[-1]]
    t = port_adain(content_feat, style_feats[-1])
    g_t = decoder(t)
    g_t_feats = [encoder(g_t, layers=layers)[k] for k in layers]
    loss_c = F.mse_loss(g_t_feats[-1], t)

    def calc_style_loss(inp: Tensor, target: Tensor) -> Tensor:
        input_mean, input_std = port_calc_mean_std(inp)
        target_mean, target_std = port_calc_mean_std(target)
        return F.mse_loss(input_mean, target_mean) + F.mse_loss(input_std, target_std)

    loss_s = calc_style_loss(g_t_feats[0], style_feats[0])
    for i in range(1, len(layers)):
        loss_s = loss_s + calc_style_loss(g_t_feats[i], style_feats[i])
    return loss_c, loss_s


@pytest.fixture
def trainer(tmp_path: Path, write_random_images) -> Trainer:
    write_random_images(tmp_path / "c", 2, 0)
    write_random_images(tmp_path / "s", 2, 1)
    config = TrainConfig(
        str(tmp_path / "c"), str(tmp_path / "s"), output=str(tmp_path / "run"), encoder=ENCODER,
        pretrained=False, image_size=40, crop_size=32, batch_size=2, device="cpu", progress=False,
    )  # fmt: skip
    return Trainer(config, log=lambda msg: None)


def _batches() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(7)
    content = torch.rand(2, 3, 32, 32, generator=g)
    style = torch.rand(2, 3, 32, 32, generator=g) ** 2  # other statistics than the content
    return content, style


def test_training_losses_equal_the_ports_net_forward(trainer: Trainer) -> None:
    content, style = _batches()
    layers = trainer.layers
    assert layers[-1] == trainer.encoder.adain_layer  # the port's taps end at the AdaIN layer
    with torch.no_grad():
        loss_c, loss_s, _ = trainer.losses(content, style)
        ref_c, ref_s = port_net_forward(trainer.encoder, trainer.decoder, content, style, layers)
    torch.testing.assert_close(loss_c, ref_c, rtol=1e-5, atol=0)
    torch.testing.assert_close(loss_s, ref_s, rtol=1e-5, atol=0)
    # the losses are not degenerate: swapping the batches changes both
    with torch.no_grad():
        other_c, other_s, _ = trainer.losses(style, content)
    assert abs(float(other_s) - float(loss_s)) > 1e-3 * float(loss_s)
    assert abs(float(other_c) - float(loss_c)) > 1e-3 * float(loss_c)


def test_style_layer_weights_are_one_over_channels_for_meanstd(trainer: Trainer) -> None:
    channels = trainer.encoder.channels
    assert trainer.layer_weights == {k: 1.0 / channels[k] for k in trainer.layers}
    assert len({channels[k] for k in trainer.layers}) > 1  # equal weights would be a different loss


# ---- stylize ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(mobilenet_weights) -> AdaINModel:
    """A trained MobileNetV2 model (ImageNet encoder, the 500-iteration decoder, the package's first default
    model; ``experiments/checkpoints/mobilenet_v2_500.pth``): a random encoder's features are nearly
    constant and a random decoder nearly ignores its input, so they would hide a wrong formula; MobileNetV2
    keeps these tests fast."""
    return load_model(REPO_ROOT / "experiments" / "checkpoints" / "mobilenet_v2_500.pth").eval()


def _images() -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(11)
    content = torch.rand(3, 64, 64, generator=g)
    s1 = torch.rand(3, 48, 80, generator=g) ** 3
    s2 = 1 - torch.rand(3, 64, 64, generator=g) ** 2
    return content, s1, s2


def _features(model: AdaINModel, image: Tensor) -> Tensor:
    layer = model.encoder.adain_layer
    return model.encoder(image[None], layers=layer)[layer]


def _decode(model: AdaINModel, target: Tensor) -> Tensor:
    """The decoder's image ``[3, H, W]`` in [0, 1] (64 px inputs give exactly 64 px outputs)."""
    return model.decoder(target).clamp(0, 1)[0]


@torch.no_grad()
def test_stylize_is_decode_of_adain_and_differs_from_alpha_zero(model: AdaINModel) -> None:
    content, style, _ = _images()
    f = _features(model, content)
    expected = _decode(model, port_adain(f, _features(model, style)))
    out = model.stylize(content, style)
    assert out.shape == content.shape
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    reconstruction = model.stylize(content, style, alpha=0.0)
    torch.testing.assert_close(reconstruction, _decode(model, f), rtol=1e-4, atol=1e-5)
    assert (out - reconstruction).abs().mean() > 1e-3
    half = model.stylize(content, style, alpha=0.5)
    expected_half = _decode(model, 0.5 * port_adain(f, _features(model, style)) + 0.5 * f)
    torch.testing.assert_close(half, expected_half, rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_interpolation_against_hand_computed_target(model: AdaINModel) -> None:
    content, s1, s2 = _images()
    f = _features(model, content)
    (m1, d1), (m2, d2) = port_calc_mean_std(_features(model, s1)), port_calc_mean_std(_features(model, s2))
    c_mean, c_std = port_calc_mean_std(f)
    # weights 1:3 → 0.25, 0.75; the Lua original mixes the AdaIN outputs, which equals mixing statistics
    target = 0.25 * ((f - c_mean) / c_std * d1 + m1) + 0.75 * ((f - c_mean) / c_std * d2 + m2)
    out = model.stylize(content, [s1, s2], weights=[1, 3])
    torch.testing.assert_close(out, _decode(model, target), rtol=1e-4, atol=1e-5)
    assert (out - model.stylize(content, [s1, s2], weights=[3, 1])).abs().mean() > 1e-4


@torch.no_grad()
def test_binary_masks_against_hand_computed_target(model: AdaINModel) -> None:
    content, s1, s2 = _images()
    f = _features(model, content)  # [1, C, 4, 4] for 64 px at stride 16
    h, w = f.shape[-2:]
    left = torch.zeros(h, w)
    left[:, : w // 2] = 1.0
    target = f.clone()
    for region, style in ((left.bool(), s1), (~left.bool(), s2)):
        s_mean, s_std = port_calc_mean_std(_features(model, style))
        values = f[..., region]  # [1, C, n]: the region's content features
        r_mean = values.mean(dim=-1)[..., None]
        r_std = (values.var(dim=-1) + 1e-5).sqrt()[..., None]
        target[..., region] = (values - r_mean) / r_std * s_std[..., 0] + s_mean[..., 0]
    out = model.stylize(content, [s1, s2], masks=[left, 1 - left])
    torch.testing.assert_close(out, _decode(model, target), rtol=1e-4, atol=1e-5)
