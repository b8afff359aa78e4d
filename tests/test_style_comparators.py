"""The sliced-Wasserstein and mean + full-covariance style losses (issue 15, further comparators)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmd


def _features(batch, n, m_f, m_s, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lead = () if batch is None else (batch,)
    f = torch.randn(*lead, n, m_f, generator=gen, dtype=torch.float64)
    s = torch.randn(*lead, n, m_s, generator=gen, dtype=torch.float64) * 1.5 + 0.3
    return f, s


LOSSES = {
    "sliced_wasserstein": lambda f, s: mmd.sliced_wasserstein_loss(f, s, projections=5, seed=1),
    "meancov": mmd.mean_covariance_loss,
    "meancov_biased": lambda f, s: mmd.mean_covariance_loss(f, s, 0.5, 2.0, unbiased=False),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize(("batch", "m_f", "m_s"), [(None, 7, 7), (None, 6, 9), (2, 8, 5)])
def test_gradcheck_batched_unbatched_unequal_m(name, batch, m_f, m_s):
    f, s = _features(batch, 3, m_f, m_s)
    f.requires_grad_(True)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(LOSSES[name], (f, s), eps=1e-6, atol=1e-8, rtol=1e-6)
    value = LOSSES[name](f, s)
    assert value.shape == (() if batch is None else (batch,))


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("shape", [(1, 4, 1, 1), (1, 4, 5, 5)])
def test_flat_and_single_position_inputs_are_finite(name, shape):
    flat = torch.full(shape, 0.7, requires_grad=True)
    for style in (torch.full(shape, 0.3), torch.zeros(shape), torch.rand(1, 4, 3, 2)):
        value = LOSSES[name](flat, style).sum()
        (grad,) = torch.autograd.grad(value, flat)
        assert torch.isfinite(value) and torch.all(torch.isfinite(grad))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_zero_on_itself_positive_otherwise_and_style_batch_broadcasts(name):
    f, s = _features(3, 4, 20, 30, seed=2)
    assert torch.all(LOSSES[name](f, f).abs() < 1e-12)
    broadcast = LOSSES[name](f, s[:1])
    assert broadcast.shape == (3,) and torch.all(broadcast > 0)
    for i in range(3):
        torch.testing.assert_close(broadcast[i], LOSSES[name](f[i], s[0]))


# --- sliced Wasserstein ---------------------------------------------------------------------------


def test_sliced_wasserstein_is_1d_w2_per_direction():
    rng = np.random.default_rng(0)
    f, s = rng.normal(size=(1, 50)), rng.exponential(size=(1, 50))
    got = mmd.sliced_wasserstein_loss(torch.from_numpy(f), torch.from_numpy(s), directions=torch.ones(1, 1))
    np.testing.assert_allclose(got.item(), np.mean((np.sort(f[0]) - np.sort(s[0])) ** 2), rtol=1e-12)


def test_sliced_wasserstein_of_a_translation_and_of_a_permutation():
    f, _ = _features(None, 6, 40, 40, seed=3)
    t = torch.randn(6, 1, dtype=torch.float64)
    dirs = mmd.random_directions(6, 16, seed=4, dtype=torch.float64)
    torch.testing.assert_close(dirs.norm(dim=0), torch.ones(16, dtype=torch.float64))
    got = mmd.sliced_wasserstein_loss(f, f + t, directions=dirs)
    torch.testing.assert_close(got, (dirs.T @ t).pow(2).mean(), rtol=1e-10, atol=0)
    shuffled = f[:, torch.randperm(40, generator=torch.Generator().manual_seed(0))]
    assert mmd.sliced_wasserstein_loss(f, shuffled, projections=16).abs() < 1e-14


def test_sliced_wasserstein_unequal_m_interpolates_quantiles():
    """Each style position twice (M_S = 2 M_F) has the same quantile function: loss 0."""
    f, _ = _features(None, 3, 25, 25, seed=5)
    doubled = f.repeat_interleave(2, dim=-1)
    assert mmd.sliced_wasserstein_loss(f, doubled, projections=8).abs() < 1e-14
    assert mmd.sliced_wasserstein_loss(f, doubled[:, :-3], projections=8) > 0


def test_sliced_wasserstein_mid_point_quantiles_by_hand():
    """M_F = 2 levels (¼, ¾) on the style's 3 order statistics (0, 1, 2) at positions 0.25 and 1.75."""
    one = torch.ones(1, 1, dtype=torch.float64)
    style = torch.tensor([[2.0, 0.0, 1.0]], dtype=torch.float64)
    at_quantiles = torch.tensor([[1.75, 0.25]], dtype=torch.float64)
    assert mmd.sliced_wasserstein_loss(at_quantiles, style, directions=one) == 0
    got = mmd.sliced_wasserstein_loss(torch.tensor([[0.0, 1.0]], dtype=torch.float64), style, directions=one)
    torch.testing.assert_close(
        got, torch.tensor(((0 - 0.25) ** 2 + (1 - 1.75) ** 2) / 2, dtype=torch.float64)
    )


def test_sliced_wasserstein_directions_are_fixed_by_seed_and_checked():
    f, s = _features(None, 5, 30, 20, seed=6)
    a = mmd.sliced_wasserstein_loss(f, s, projections=8, seed=0)
    assert torch.equal(a, mmd.sliced_wasserstein_loss(f, s, projections=8, seed=0))
    assert not torch.equal(a, mmd.sliced_wasserstein_loss(f, s, projections=8, seed=1))
    with pytest.raises(ValueError, match="directions must be"):
        mmd.sliced_wasserstein_loss(f, s, directions=torch.ones(4, 2))
    with pytest.raises(ValueError, match="channel counts differ"):
        mmd.sliced_wasserstein_loss(f, s[:4])


# --- mean + covariance ----------------------------------------------------------------------------


def test_mean_covariance_loss_matches_numpy():
    f, s = _features(None, 4, 30, 17, seed=7)
    fn, sn = f.numpy(), s.numpy()
    expected = 0.5 * np.sum((fn.mean(1) - sn.mean(1)) ** 2) + 2.0 * np.sum((np.cov(fn) - np.cov(sn)) ** 2)
    np.testing.assert_allclose(mmd.mean_covariance_loss(f, s, 0.5, 2.0).item(), expected, rtol=1e-12)


def test_covariance_term_is_the_gram_identity_on_centred_features():
    """‖Σ_F − Σ_S‖² (divide by M) = 4N² · Gram loss of the mean-centred features = MMD²_b under (xᵀy)²."""
    f, s = _features(2, 5, 30, 22, seed=8)
    centred_f, centred_s = f - f.mean(-1, keepdim=True), s - s.mean(-1, keepdim=True)
    cov_only = mmd.mean_covariance_loss(f, s, mean_weight=0.0, unbiased=False)
    torch.testing.assert_close(
        cov_only, 4 * 25 * mmd.gram_style_loss(centred_f, centred_s), rtol=1e-12, atol=0
    )
    # a pure shift changes only the mean term
    t = torch.randn(2, 5, 1, dtype=torch.float64)
    torch.testing.assert_close(mmd.mean_covariance_loss(f, f + t), t.pow(2).sum((-1, -2)), rtol=1e-12, atol=0)


def test_comparators_are_reachable_by_name():
    f, s = _features(2, 3, 10, 12, seed=9)
    torch.testing.assert_close(
        mmd.style_loss("meancov", cov_weight=0.1)(f, s), mmd.mean_covariance_loss(f, s, 1.0, 0.1)
    )
    torch.testing.assert_close(
        mmd.style_loss("sliced_wasserstein", projections=7, seed=2)(f, s),
        mmd.sliced_wasserstein_loss(f, s, projections=7, seed=2),
    )
    with pytest.raises(ValueError, match="non-negative"):
        mmd.mean_covariance_loss(f, s, mean_weight=-1.0)
    with pytest.raises(ValueError, match="bad parameters"):
        mmd.style_loss("sliced_wasserstein", kernel=None)
