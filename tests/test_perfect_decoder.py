"""The perfect-decoder reference: the AdaIN target inverted by optimisation (experiments.perfect_decoder)."""

from __future__ import annotations

import pytest
import torch

from adain.encoders import build_encoder
from adain.ops.normalization import adaptive_instance_norm
from experiments.perfect_decoder import PerfectDecoder, invert_features


@pytest.fixture(scope="module")
def encoder() -> torch.nn.Module:
    torch.manual_seed(0)  # only the random initialisation of this test network
    return build_encoder("vgg19_caffe_normalised", weights=None).double().eval()


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.rand(3, 32, 32, generator=g, dtype=torch.float64), torch.rand(3, 32, 32, generator=g) ** 2


@pytest.mark.slow
def test_inversion_recovers_an_image_from_its_own_features(encoder) -> None:
    content, other = _images()
    layer = encoder.adain_layer
    with torch.no_grad():
        target = encoder(other.double()[None], layers=[layer])[layer]
    result = invert_features(encoder, target, layer, content, iterations=30, tolerance=0.0)
    assert result.stop_reason == "max_iterations" and len(result.history) == 31
    assert result.history[-1] < 0.15 * result.history[0]  # the features of `other` are approached
    assert 0 <= float(result.image.min()) and float(result.image.max()) <= 1
    stopped = invert_features(encoder, target, layer, content, iterations=30, tolerance=0.5, window=2)
    assert stopped.stop_reason == "converged" and len(stopped.history) < 31


def test_perfect_decoder_matches_the_adain_target_better_than_the_content(encoder) -> None:
    content, style = _images()
    decoder = PerfectDecoder(encoder, iterations=20, tolerance=0.0)
    image = decoder.stylize(content, style.double())
    assert image.shape == content.shape
    layer = encoder.adain_layer
    with torch.no_grad():
        c, s = (encoder(x[None], layers=[layer])[layer] for x in (content, style.double()))
        target = adaptive_instance_norm(c, s)
        out = encoder(image[None], layers=[layer])[layer]
    error = float((out - target).pow(2).mean())
    assert error < 0.5 * float((c - target).pow(2).mean())
    assert torch.equal(image, decoder.stylize(content, style.double()))  # deterministic


def test_error_is_the_inversions_objective(encoder) -> None:
    content, style = _images()
    decoder = PerfectDecoder(encoder, iterations=5, tolerance=0.0)
    result = decoder.invert(content, style.double())
    target = decoder.target(content, style.double())
    with torch.no_grad():
        features = encoder(content[None], layers=[encoder.adain_layer])[encoder.adain_layer]
    by_hand = float((features - target).pow(2).sum() / target.pow(2).sum())
    assert decoder.error(content, content, style.double()) == pytest.approx(by_hand, rel=1e-12)
    # the inversion starts at the content (pixels clamped to [1e-3, 1 - 1e-3]) and ends at its image
    assert result.history[0] == pytest.approx(by_hand, rel=1e-2)
    assert decoder.error(result.image, content, style.double()) == pytest.approx(result.history[-1], rel=1e-9)
    assert result.history[-1] < result.history[0]


def test_bad_target_shape_is_a_clear_error(encoder) -> None:
    content, _ = _images()
    with pytest.raises(ValueError, match="does not match"):
        invert_features(encoder, torch.zeros(1, 3, 2, 2, dtype=torch.float64), encoder.adain_layer, content,
                        iterations=1)  # fmt: skip


def test_invert_is_a_decoder_column_in_configs(tmp_path, paper_images) -> None:
    from test_repeats import _config

    from experiments.optimize import INVERT, load_config

    path = _config(tmp_path, paper_images)
    path.write_text(path.read_text() + '\n[decoders]\nperfect = "invert"\n')
    assert load_config(path).decoders == (("perfect", INVERT),)
