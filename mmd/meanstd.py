"""Mean/std (AdaIN, BN-statistics) style matching."""

from __future__ import annotations

from torch import Tensor

from .stats import channel_mean_std, flatten_positions

__all__ = ["mean_std_loss"]


def mean_std_loss(generated: Tensor, style: Tensor, eps: float = 1e-5, unbiased: bool = True) -> Tensor:
    """Squared distance between the per-channel means and standard deviations of two feature maps::

        L = Σ_c (μ_F,c − μ_S,c)² + (σ_F,c − σ_S,c)²,   σ = sqrt(var + eps)

    This is the style loss of AdaIN decoder training (Huang & Belongie 2017) summed over channels;
    the public PyTorch port's ``MSELoss`` reports this divided by ``N``. The ``eps`` keeps flat
    (zero-variance) inputs finite, values and gradients alike. It matches the first two moments of
    each channel's marginal, where the Gram loss matches all channel co-moments (see the note).

    Args:
        generated: ``[B, N, H, W]``, ``[B, N, M_F]`` or ``[N, M_F]``.
        style: same layout, any number of positions; a batch of 1 broadcasts.
        eps: added to the variance before the square root.
        unbiased: variance divides by ``M − 1`` (the AdaIN port's convention) or by ``M``.

    Returns:
        ``[B]`` per-sample losses (a 0-d tensor for unbatched input).
    """
    f, s = flatten_positions(generated), flatten_positions(style)
    if f.shape[-2] != s.shape[-2]:
        raise ValueError(f"channel counts differ: generated has {f.shape[-2]}, style has {s.shape[-2]}")
    mu_f, sd_f = channel_mean_std(f, eps=eps, unbiased=unbiased)
    mu_s, sd_s = channel_mean_std(s, eps=eps, unbiased=unbiased)
    return ((mu_f - mu_s).pow(2) + (sd_f - sd_s).pow(2)).sum(dim=(-1, -2))
