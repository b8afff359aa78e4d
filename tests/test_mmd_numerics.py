"""Value/gradient consistency of every kernel × estimator × route, fixed bandwidths, the linear-time
estimator, and the cancellation-aware identity check (issue 15, defects 1 and 2)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

import mmd
from mmd import kernels


def _samples(m_x=7, m_y=6, n=3, seed=0, batch=()):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*batch, m_x, n, generator=gen, dtype=torch.float64)
    y = torch.randn(*batch, m_y, n, generator=gen, dtype=torch.float64) * 1.3 + 0.4
    return x, y


_, _Y = _samples()
KERNELS = {
    "linear": kernels.linear(),
    "poly2": kernels.polynomial(2),
    "poly3": kernels.polynomial(3, gamma=0.2, c=1.0),
    "gauss_fixed": kernels.gaussian([0.8, 2.0]),
    "gauss_from_target": kernels.gaussian_from_target(_Y, scales=(0.5, 1.0, 2.0)),
    "gauss_median_for_target": kernels.gaussian("median", scales=(1.0, 2.0)).for_target(_Y),
    "gauss_rms_for_target": kernels.gaussian("rms", scales=(2**-0.5,)).for_target(_Y),
}
# a bandwidth fixed from y is a constant: the gradient with respect to y is not that of a function of y
FIXED_FROM_Y = {"gauss_from_target", "gauss_median_for_target", "gauss_rms_for_target"}
CASES = [
    (name, estimator, route)
    for name, k in KERNELS.items()
    for estimator in ("biased", "unbiased", "linear")
    for route in ("kernel", "moment")
    if not (route == "moment" and (estimator == "linear" or not k.has_moment_route))
]


@pytest.mark.parametrize(("name", "estimator", "route"), CASES)
def test_gradient_matches_finite_differences(name, estimator, route):
    """float64 gradcheck (central differences) of MMD² for every kernel, estimator and route."""
    kernel = KERNELS[name]
    x, y = _samples()
    x.requires_grad_(True)
    y.requires_grad_(name not in FIXED_FROM_Y)

    def f(a, b):
        return mmd.mmd2(a, b, kernel, estimator, route=route, chunk_size=4)

    assert torch.autograd.gradcheck(f, (x, y), eps=1e-6, atol=1e-8, rtol=1e-6)


def _directional_mismatch(kernel, x, y, seed=1, h=1e-5):
    """|autograd·d − central difference| / |central difference| along a random direction d of x."""
    d = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(mmd.mmd2(xg, y, kernel, route="kernel"), xg)
    with torch.no_grad():
        fd = (mmd.mmd2(x + h * d, y, kernel) - mmd.mmd2(x - h * d, y, kernel)) / (2 * h)
    return float((grad * d).sum().sub(fd).abs() / fd.abs())


def test_per_call_median_bandwidth_gradient_disagrees_and_warns():
    """The defect the fixed bandwidth removes: per-call pooled median → gradient ≠ derivative of the value."""
    x, y = _samples(40, 30, 5, seed=3)
    with pytest.warns(UserWarning, match="gaussian_from_target"):
        mismatch = _directional_mismatch(kernels.gaussian("median"), x, y)
    assert mismatch > 1e-3
    fixed = kernels.gaussian_from_target(y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning once the bandwidth is fixed
        assert _directional_mismatch(fixed, x, y) < 1e-6


def test_gaussian_from_target_is_the_median_of_the_target_alone():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(25, 5)) + 1.0
    d = cdist(y, y)
    sigma = np.median(d[~np.eye(len(y), dtype=bool)])
    k = kernels.gaussian_from_target(torch.from_numpy(y), scales=(1.0, 2.0))
    np.testing.assert_allclose(k.sigmas.numpy(), [sigma, 2 * sigma], rtol=1e-12)
    expected = np.mean(
        [np.exp(-cdist(x, y, "sqeuclidean") / (2 * s * s)) for s in (sigma, 2 * sigma)], axis=0
    )
    np.testing.assert_allclose(k(torch.from_numpy(x), torch.from_numpy(y)).numpy(), expected, rtol=1e-12)
    # the same kernel object, whatever the generated samples: the bandwidth does not move
    other = torch.randn(10, 5, dtype=torch.float64) * 5
    assert torch.equal(k.for_target(other).sigmas, k.sigmas)
    with pytest.raises(ValueError, match="scales must be positive"):
        kernels.gaussian_from_target(torch.from_numpy(y), scales=(0.0,))
    with pytest.raises(ValueError, match=r"\[\.\.\., M, N\]"):
        kernels.gaussian_from_target(torch.zeros(5))


def _brute_rms(z):
    """float64 reference: sqrt of the mean squared distance over all ordered pairs i != j."""
    d2 = cdist(z, z, "sqeuclidean")
    return np.sqrt(d2[~np.eye(len(z), dtype=bool)].mean())


def test_rms_bandwidth_closed_form_matches_brute_force():
    """``rms_distance`` (closed form, centred) against every pairwise distance in float64, for one set, a
    pooled pair and a batch; and Li et al.'s kernel ``exp(-‖x − y‖²/d2)`` is ``sigma="rms"`` with scale
    1/√2, fixed from the target alone."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(13, 4)) * 3 + 5, rng.normal(size=(9, 4)) + 1.0  # offset: no cancellation
    np.testing.assert_allclose(kernels.rms_distance(torch.from_numpy(y)).item(), _brute_rms(y), rtol=1e-13)
    pooled = kernels.rms_distance(torch.from_numpy(x), torch.from_numpy(y))
    np.testing.assert_allclose(pooled.item(), _brute_rms(np.concatenate([x, y])), rtol=1e-13)
    batch = rng.normal(size=(3, 7, 4))
    np.testing.assert_allclose(
        kernels.rms_distance(torch.from_numpy(batch)).numpy(), [_brute_rms(b) for b in batch], rtol=1e-13
    )
    assert kernels.rms_distance(torch.ones(5, 3, dtype=torch.float64)).item() > 0  # coincident samples

    k = kernels.gaussian("rms", scales=(2**-0.5,)).for_target(torch.from_numpy(y))
    d2 = _brute_rms(y) ** 2  # Li et al.'s d2: the mean squared distance
    expected = np.exp(-cdist(x, y, "sqeuclidean") / d2)
    np.testing.assert_allclose(k(torch.from_numpy(x), torch.from_numpy(y)).numpy(), expected, rtol=1e-12)
    same = kernels.gaussian_from_target(torch.from_numpy(y), scales=(2**-0.5,), sigma="rms")
    torch.testing.assert_close(same.sigmas, k.sigmas)
    with pytest.raises(ValueError, match="'median' or 'rms'"):
        kernels.gaussian("mean")
    with pytest.raises(ValueError, match="rms scales must be positive"):
        kernels.gaussian("rms", scales=(-1.0,))


def test_rms_bandwidth_for_target_is_fixed_and_per_call_one_warns():
    """``for_target`` fixes the RMS bandwidth from the style alone (it does not move with the generated
    samples, and the gradient then matches finite differences); the per-call pooled one moves and warns."""
    x, y = _samples(40, 30, 5, seed=3)
    fixed = kernels.gaussian("rms").for_target(y)
    np.testing.assert_allclose(fixed.sigmas.numpy(), [_brute_rms(y.numpy())], rtol=1e-13)
    assert torch.equal(fixed.for_target(x * 7).sigmas, fixed.sigmas)  # no heuristic left to recompute
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _directional_mismatch(fixed, x, y) < 1e-6
    with pytest.warns(UserWarning, match=r"gaussian\('rms'\).*for_target"):
        mismatch = _directional_mismatch(kernels.gaussian("rms"), x, y)
    assert mismatch > 1e-3
    style = torch.randn(1, 5, 4, 6, dtype=torch.float64)
    loss = mmd.build_style_loss({"name": "mmd", "kernel": {"name": "gaussian", "sigma": "rms"}})
    torch.testing.assert_close(
        loss.for_target(style).kernel.sigmas,
        kernels.rms_distance(mmd.positions_as_samples(style)).unsqueeze(-1),
    )


def test_bandwidth_from_batched_target_broadcasts_per_element():
    x, y = _samples(9, 8, 4, seed=4, batch=(3,))
    k = kernels.gaussian_from_target(y, scales=(1.0, 2.0))
    assert k.sigmas.shape == (3, 2)
    batched = mmd.mmd2(x, y, k, route="kernel", chunk_size=3)
    for i in range(3):
        torch.testing.assert_close(
            batched[i], mmd.mmd2(x[i], y[i], kernels.gaussian_from_target(y[i], (1.0, 2.0)))
        )
    one = kernels.gaussian_from_target(y[:1])  # a batch of 1 broadcasts over the generated batch
    assert mmd.mmd2(x, y[:1], one).shape == (3,)


def test_mmd_loss_for_target_fixes_the_bandwidth_once():
    style = torch.randn(1, 4, 6, 5, dtype=torch.float64)
    loss = mmd.style_loss("mmd", kernel=kernels.gaussian("median", scales=(1.0, 2.0)))
    fixed = loss.for_target(style)
    expected = kernels.gaussian_from_target(mmd.positions_as_samples(style), (1.0, 2.0))
    torch.testing.assert_close(fixed.kernel.sigmas, expected.sigmas)
    gen = torch.randn(2, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = fixed(gen, style)
        value.sum().backward()
    assert value.shape == (2,)
    for name in ("gram", "meanstd", "meancov", "sliced_wasserstein"):
        plain = mmd.style_loss(name)
        assert plain.for_target(style) is plain
    poly = mmd.style_loss("mmd")
    assert poly.for_target(style) == poly


# --- the linear-time estimator --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["linear", "poly3", "gauss_fixed"])
@pytest.mark.parametrize(("m_x", "m_y"), [(8, 8), (9, 6), (2, 5)])
def test_linear_time_estimator_matches_gretton_formula(name, m_x, m_y):
    kernel = KERNELS[name]
    x, y = _samples(m_x, m_y, 3, seed=5)
    pairs = min(m_x, m_y) // 2
    h = []
    for p in range(pairs):
        x0, x1, y0, y1 = x[2 * p], x[2 * p + 1], y[2 * p], y[2 * p + 1]

        def k(a, b):
            return kernel(a[None], b[None])[0, 0]

        h.append(k(x0, x1) + k(y0, y1) - k(x0, y1) - k(x1, y0))
    torch.testing.assert_close(mmd.mmd2(x, y, kernel, "linear"), torch.stack(h).mean(), rtol=1e-12, atol=0)


def test_linear_time_estimator_is_unbiased_over_row_orders():
    """Averaged over random orders of the rows, the linear statistic is the U-statistic (equal M)."""
    x, y = _samples(6, 6, 2, seed=6)
    kernel = KERNELS["gauss_fixed"]
    gen = torch.Generator().manual_seed(0)
    values = torch.stack(
        [
            mmd.mmd2(
                x[torch.randperm(6, generator=gen)], y[torch.randperm(6, generator=gen)], kernel, "linear"
            )
            for _ in range(4000)
        ]
    )
    unbiased = mmd.mmd2(x, y, kernel, "unbiased")
    stderr = values.std() / values.numel() ** 0.5
    assert abs(values.mean() - unbiased) < 4 * stderr
    assert values.std() > 0  # a real random variable, not the U-statistic itself


def test_linear_time_estimator_shapes_and_errors():
    x, y = _samples(10, 8, 3, seed=7, batch=(2,))
    value = mmd.mmd2(x, y[0], KERNELS["poly2"], "linear")
    assert value.shape == (2,)
    assert mmd.mmd2(x[0], x[0], KERNELS["gauss_fixed"], "linear") == 0
    with pytest.raises(ValueError, match="no moment route"):
        mmd.mmd2(x, y, KERNELS["poly2"], "linear", route="moment")
    with pytest.raises(ValueError, match="linear estimator needs at least 2"):
        mmd.mmd2(x[:, :1], y, KERNELS["poly2"], "linear")
    loss = mmd.style_loss("mmd", kernel=kernels.linear(), estimator="linear")
    assert loss(torch.randn(2, 3, 4, 4), torch.randn(1, 3, 4, 4)).shape == (2,)


# --- cancellation ---------------------------------------------------------------------------------


def _near(eps, seed, n=32, m=256, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    s = torch.randn(n, m, generator=gen, dtype=torch.float64).abs()
    f = s + eps * torch.randn(n, m, generator=gen, dtype=torch.float64)
    return f.to(dtype), s.to(dtype)


def test_identity_check_is_condition_aware_near_convergence():
    """Near F = S the kernel route's relative error is large even in float64, yet within rounding
    error of the terms it cancels; a fixed rtol says the identity fails, the condition-aware check not."""
    f, s = _near(1e-6, seed=0)
    check = mmd.verify_identity(f, s, dtype=torch.float64)
    assert float(check.condition) > 1e9
    assert not check.holds(rtol=1e-10)
    assert check.holds()
    # an error far above rounding error is still caught
    broken = dataclasses.replace(check, abs_error=check.abs_error + 10 * check.tolerance())
    assert not broken.holds()


def test_negative_biased_values_are_clamped_and_reported():
    found = 0
    for seed in range(20):
        f, s = _near(1e-4, seed, dtype=torch.float32)
        x, y = mmd.positions_as_samples(f), mmd.positions_as_samples(s)
        raw = mmd.mmd2(x, y, kernels.polynomial(2), route="kernel", clamp=False)
        if raw < 0:
            found += 1
            assert mmd.mmd2(x, y, kernels.polynomial(2), route="kernel") == 0
            check = mmd.verify_identity(f, s, dtype=torch.float32)
            assert check.negative and "negative" in str(check)
            assert check.holds()
    assert found > 0, "no negative raw value among 20 near-converged float32 cases"
    # the unbiased estimator may be negative in exact arithmetic: never clamped
    x, y = _samples(5, 5, 2, seed=8)
    value = mmd.mmd2(x, x + 1e-3, kernels.gaussian(1.0), "unbiased")
    assert value < 0
