"""experiments.decoder_health: the per-ReLU signal of fresh and trained decoders."""

from __future__ import annotations

import pytest
import torch

from experiments.decoder_health import decoder_health, fresh_decoder


def test_he_init_keeps_the_signal_and_torch_default_shrinks_it() -> None:
    rng = torch.get_rng_state()
    features = torch.rand(2, 512, 4, 4, generator=torch.Generator().manual_seed(0)) * 2
    he, _ = decoder_health(fresh_decoder("vgg19_caffe_normalised", "he", 0), features)
    default, output = decoder_health(fresh_decoder("vgg19_caffe_normalised", "torch", 0), features)
    assert [r[1] for r in he] == [256, 256, 256, 256, 128, 128, 64, 64]
    assert he[-1][2] / he[0][2] > 0.5  # the mean activation survives 8 layers
    assert default[-1][2] / default[0][2] < 0.1  # ~2.5x smaller per layer
    assert output.shape == (2, 3, 32, 32) and all(0 <= r[3] <= 1 for r in he + default)
    assert torch.equal(torch.get_rng_state(), rng)  # seeded without touching the global generator
    with pytest.raises(ValueError, match="init"):
        fresh_decoder("vgg19_caffe_normalised", "xavier", 0)
