"""The Gaussian kernel sum with an analytic backward pass (mmd.gaussian_sum), and the style target's kernel
sum computed once by ``MMDLoss.for_target`` (both speed up the Gaussian MMD of the kernel comparison)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import mmd
from mmd import kernels
from mmd.gaussian_sum import gaussian_kernel_sum


def _pair(p=7, q=5, n=3, batch=(), seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(*batch, p, n, generator=gen, dtype=dtype)
    b = torch.randn(*batch, q, n, generator=gen, dtype=dtype) * 1.5 + 0.3
    return a, b


def _autograd_sum(a, b, sigmas):
    """Reference: the kernel matrix through plain autograd, summed."""
    return kernels.Gaussian(sigmas=sigmas)(a, b).sum(dim=(-1, -2))


@pytest.mark.parametrize(
    ("batch_a", "batch_b", "sigmas"),
    [
        ((), (), torch.tensor([1.3], dtype=torch.float64)),
        ((), (), torch.tensor([0.5, 1.0, 4.0], dtype=torch.float64)),
        ((2,), (2,), torch.tensor([[0.7, 2.0], [1.1, 3.0]], dtype=torch.float64)),  # one row per element
        ((3,), (), torch.tensor([1.5], dtype=torch.float64)),  # a batched, b shared (broadcast)
    ],
)
def test_value_and_gradient_match_autograd_and_finite_differences(batch_a, batch_b, sigmas):
    a, _ = _pair(batch=batch_a, seed=1)
    _, b = _pair(batch=batch_b, seed=2)
    a.requires_grad_(True)
    b.requires_grad_(True)
    fused = lambda x, y: gaussian_kernel_sum(x, y, sigmas)  # noqa: E731
    assert torch.autograd.gradcheck(fused, (a, b), eps=1e-6, atol=1e-9)
    value = gaussian_kernel_sum(a, b, sigmas)
    grads = torch.autograd.grad(value.sum(), (a, b))
    expected = _autograd_sum(a, b, sigmas)
    expected_grads = torch.autograd.grad(expected.sum(), (a, b))
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=0)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_same_tensor_on_both_sides_accumulates_both_gradients():
    """``Σ_ij k(a_i, a_j)`` (the within-set sum): the gradient is the sum of both sides'."""
    a, _ = _pair(p=6)
    a.requires_grad_(True)
    sigmas = torch.tensor([0.9], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: gaussian_kernel_sum(x, x, sigmas), (a,), eps=1e-6, atol=1e-9)


def test_float32_agrees_with_float64_and_keeps_dtype():
    a, b = _pair(p=300, q=200, n=16, seed=3)
    sigmas = torch.tensor([4.0], dtype=torch.float64)
    a32, b32 = a.float().requires_grad_(True), b.float()
    value = gaussian_kernel_sum(a32, b32, sigmas.float())
    (grad,) = torch.autograd.grad(value, a32)
    assert value.dtype == grad.dtype == torch.float32
    a64 = a.clone().requires_grad_(True)
    (grad64,) = torch.autograd.grad(gaussian_kernel_sum(a64, b, sigmas), a64)
    torch.testing.assert_close(grad.double(), grad64, rtol=1e-4, atol=1e-6)


def test_bandwidths_that_need_a_gradient_take_the_autograd_path():
    """The fused sum treats σ as a constant; a σ that requires grad must still get its gradient."""
    a, b = _pair()
    sigma = torch.tensor([1.2], dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="constants"):
        gaussian_kernel_sum(a, b, sigma)
    kernel = kernels.Gaussian(sigmas=sigma)
    assert not kernel.pair_sum_is_lean
    (grad,) = torch.autograd.grad(kernel.pair_sum(a, b), sigma)
    (expected,) = torch.autograd.grad(_autograd_sum(a, b, sigma), sigma)
    torch.testing.assert_close(grad, expected)
    assert kernels.gaussian(1.2).pair_sum_is_lean


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_chunked_mmd_with_the_fused_sum_equals_whole_matrices(estimator):
    """Blocks (symmetric ones doubled) through the fused sum give the whole-matrix MMD² and gradient."""
    x, y = _pair(p=23, q=17, n=4, seed=4)
    kernel = kernels.gaussian([0.8, 2.5])
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    values = [mmd.mmd2(xi, y, kernel, estimator, chunk_size=c) for xi, c in zip(xs, (5, None), strict=True)]
    torch.testing.assert_close(values[0], values[1], rtol=1e-12, atol=1e-15)
    grads = [torch.autograd.grad(v, xi)[0] for v, xi in zip(values, xs, strict=True)]
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-14)


def _features(seed, shape=(1, 6, 5, 4)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_for_target_reuses_the_style_kernel_sum_with_the_same_value_and_gradient(estimator, monkeypatch):
    style, generated = _features(0), _features(1, (2, 6, 4, 4))
    loss = mmd.MMDLoss(kernel=kernels.gaussian("median"), estimator=estimator, chunk_size=7)
    fitted = loss.for_target(style)
    assert fitted.target is style and fitted.target_sum is not None
    plain = dataclasses.replace(fitted, target=None, target_sum=None)  # the same kernel, no cached sum

    calls = []
    real = mmd.estimators._kernel_sum

    def counting(a, b, *args, **kwargs):
        calls.append(a.shape[-2])
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(mmd.estimators, "_kernel_sum", counting)
    g1, g2 = generated.clone().requires_grad_(True), generated.clone().requires_grad_(True)
    cached, uncached = fitted(g1, style), plain(g2, style)
    assert len(calls) == 2 + 3  # xx, xy with the cached target; xx, yy, xy without
    torch.testing.assert_close(cached, uncached, rtol=1e-13, atol=0)
    (grad_cached,) = torch.autograd.grad(cached.sum(), g1)
    (grad_uncached,) = torch.autograd.grad(uncached.sum(), g2)
    torch.testing.assert_close(grad_cached, grad_uncached)

    # another style tensor (even one equal in value) is summed afresh, never given the cached sum
    other = _features(5)
    torch.testing.assert_close(fitted(generated, other), plain(generated, other))
    calls.clear()
    fitted(generated, style.clone())
    assert len(calls) == 3


def test_cached_style_sum_is_not_used_when_a_gradient_through_the_style_is_wanted():
    style, generated = _features(0).requires_grad_(True), _features(1)
    fitted = mmd.MMDLoss(kernel=kernels.gaussian(1.0)).for_target(style)
    (grad,) = torch.autograd.grad(fitted(generated, style).sum(), style)
    plain = dataclasses.replace(fitted, target=None, target_sum=None)
    (expected,) = torch.autograd.grad(plain(generated, style).sum(), style)
    torch.testing.assert_close(grad, expected)


def test_no_cached_sum_where_it_does_not_apply():
    style = _features(0)
    assert mmd.MMDLoss(kernel=kernels.polynomial(2)).for_target(style).target_sum is None  # moment route
    linear_time = mmd.MMDLoss(kernel=kernels.gaussian(1.0), estimator="linear").for_target(style)
    assert linear_time.target_sum is None
    kernel_route = mmd.MMDLoss(kernel=kernels.polynomial(2), route="kernel").for_target(style)
    assert kernel_route.target_sum is not None


def test_mmd2_refuses_a_target_sum_it_cannot_trust():
    x, y = _pair()
    total = mmd.estimators.kernel_sum(y, kernels.gaussian(1.0))
    with pytest.raises(ValueError, match="kernel route"):
        mmd.mmd2(x, y, kernels.polynomial(2), route="moment", target_sum=total)
    with pytest.raises(ValueError, match="data-dependent"):
        mmd.mmd2(x, y, kernels.gaussian("median"), target_sum=total)
    fixed = kernels.gaussian(1.0)
    torch.testing.assert_close(mmd.mmd2(x, y, fixed, target_sum=total), mmd.mmd2(x, y, fixed))


def test_second_derivatives_are_refused_not_wrong():
    a, b = _pair()
    a.requires_grad_(True)
    (grad,) = torch.autograd.grad(
        gaussian_kernel_sum(a, b, torch.tensor([1.0], dtype=a.dtype)), a, create_graph=True
    )
    with pytest.raises(RuntimeError, match=r"once_differentiable|does not require grad"):
        torch.autograd.grad(grad.sum(), a)
