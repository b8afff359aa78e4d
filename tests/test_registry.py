"""The mmd registries of kernels and style losses and the one spec → loss function."""

from __future__ import annotations

import argparse

import pytest
import torch

import mmd
from adain import train_cli
from adain.train import TrainConfig


def test_registered_names() -> None:
    assert mmd.kernel_names() == ("gaussian", "linear", "polynomial")
    assert mmd.style_loss_names() == ("gram", "meancov", "meanstd", "mmd", "sliced_wasserstein")


def test_spec_builds_the_same_loss_as_the_python_api() -> None:
    f, s = torch.randn(2, 8, 5, 6, dtype=torch.float64), torch.randn(1, 8, 4, 7, dtype=torch.float64)
    spec = {"name": "mmd", "kernel": {"name": "polynomial", "degree": 2, "c": 1.5}}
    direct = mmd.style_loss("mmd", kernel=mmd.kernels.polynomial(2, c=1.5))
    torch.testing.assert_close(mmd.build_style_loss(spec)(f, s), direct(f, s))
    gaussian = mmd.build_style_loss({"name": "mmd", "kernel": {"name": "gaussian", "sigma": [1, 2]}})
    assert gaussian.kernel.sigmas == (1.0, 2.0)


def test_specs_are_canonical_and_round_trip() -> None:
    short = mmd.StyleLossSpec.from_dict({"name": "mmd", "kernel": "polynomial"})
    full = mmd.StyleLossSpec.from_dict(
        {"name": "mmd", "kernel": {"name": "polynomial", "degree": 2, "c": 0.0}}
    )
    assert short == full
    assert short.to_dict() == {
        "name": "mmd",
        "kernel": {"name": "polynomial", "degree": 2, "gamma": 1.0, "c": 0.0},
    }
    assert mmd.StyleLossSpec.from_dict(short.to_dict()) == short
    assert mmd.StyleLossSpec.from_dict("gram").to_dict() == {"name": "gram"}


def test_old_poly_spelling_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match="'poly' is deprecated; use 'polynomial'"):
        spec = mmd.StyleLossSpec.from_dict({"name": "mmd", "kernel": {"name": "poly", "degree": 2}})
    assert spec.to_dict()["kernel"]["name"] == "polynomial"


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"name": "wasserstein"},
            "unknown style loss 'wasserstein'; choose one of gram, meancov, meanstd, mmd, sliced_wasserstein",
        ),
        ({"name": "mmd", "kernel": "laplace"}, "unknown kernel 'laplace'; choose one of gaussian"),
        ({"name": "gram", "eps": 1}, "bad parameters for style loss 'gram'"),
        ({"name": "mmd", "kernel": {"name": "polynomial", "degree": 0}}, "degree must be a positive integer"),
        ({"kernel": "linear"}, "needs a 'name'"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message) -> None:
    with pytest.raises(ValueError, match=message):
        mmd.build_style_loss(spec)


def test_old_checkpoint_configs_convert_to_the_same_spec() -> None:
    old = {"content_dir": "c", "style_dir": "s", "style_loss": "mmd", "kernel": "gaussian", "sigma": "median",
           "degree": 2, "gamma": 1.0, "c": 0.0, "median_scales": [1.0]}  # fmt: skip
    new = TrainConfig("c", "s", style_loss={"name": "mmd", "kernel": {"name": "gaussian"}})
    assert TrainConfig.from_dict(old) == new
    assert TrainConfig.from_dict(new.to_dict()) == new


def test_train_cli_choices_come_from_the_registries() -> None:
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    choices = {a.dest: a.choices for a in parser._actions if a.dest in ("kernel", "style_loss")}
    assert tuple(choices["kernel"]) == mmd.kernel_names()
    assert tuple(choices["style_loss"]) == mmd.style_loss_names()
    args = parser.parse_args(["--style-loss", "mmd", "--kernel", "gaussian", "--sigma", "0.5,2"])
    assert train_cli.style_loss_spec(args) == {
        "name": "mmd",
        "kernel": {"name": "gaussian", "sigma": [0.5, 2.0], "scales": [1.0]},
    }
    args = parser.parse_args(
        ["--style-loss", "mmd", "--kernel", "gaussian", "--sigma", "rms", "--median-scales", "0.7071"]
    )
    assert train_cli.style_loss_spec(args) == {
        "name": "mmd",
        "kernel": {"name": "gaussian", "sigma": "rms", "scales": [0.7071]},
    }
    with pytest.raises(SystemExit):
        parser.parse_args(["--sigma", "mean"])


def test_rms_bandwidth_spec_round_trips() -> None:
    """``sigma = "rms"`` (Li et al.'s bandwidth) in a spec: canonical form, round trip, the built kernel."""
    kernel_spec = {"name": "gaussian", "sigma": "rms", "scales": [0.5]}
    spec = mmd.StyleLossSpec.from_dict({"name": "mmd", "estimator": "linear", "kernel": kernel_spec})
    assert spec.to_dict()["kernel"] == {"name": "gaussian", "sigma": "rms", "scales": [0.5]}
    assert mmd.StyleLossSpec.from_dict(spec.to_dict()) == spec
    median = {**kernel_spec, "sigma": "median"}
    assert spec != mmd.StyleLossSpec.from_dict({"name": "mmd", "estimator": "linear", "kernel": median})
    kernel = spec.build().kernel
    assert (kernel.heuristic, kernel.scales) == ("rms", (0.5,))
    assert "heuristic='rms'" in repr(spec.build())  # what metrics.csv's loss column records
    with pytest.raises(ValueError, match="'median' or 'rms'"):
        mmd.StyleLossSpec.from_dict({"name": "mmd", "kernel": {"name": "gaussian", "sigma": "mean"}})


def test_objective_with_targets_fixes_each_layers_bandwidth_from_its_style() -> None:
    """A median-bandwidth Gaussian MMD in the objective: ``with_targets`` fixes one bandwidth per layer from
    that layer's style features, so the style term is a smooth function of the generated features whose
    autograd gradient agrees with finite differences (float64), and is the same for every output."""
    g = torch.Generator().manual_seed(0)
    loss = mmd.build_style_loss({"name": "mmd", "kernel": {"name": "gaussian", "sigma": "median"}})
    objective = mmd.StyleObjective(loss, {"a": 1.0, "b": 0.5})
    style = {"a": torch.randn(1, 3, 4, 5, generator=g, dtype=torch.float64),
             "b": 5 * torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64)}  # fmt: skip
    fixed = objective.with_targets(style)
    sigma_a, sigma_b = (fixed.loss_at(k).kernel.sigmas for k in ("a", "b"))
    first_a, first_b = (float(torch.as_tensor(v).flatten()[0]) for v in (sigma_a, sigma_b))
    assert first_b > 2 * first_a  # each layer its own bandwidth
    gen = {"a": torch.randn(1, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True),
           "b": torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)}  # fmt: skip
    torch.autograd.gradcheck(lambda a, b: fixed.style({"a": a, "b": b}, style), (gen["a"], gen["b"]))
    other = {k: v.detach() + 1 for k, v in gen.items()}
    again = fixed.with_targets(style).loss_at("a").kernel.sigmas  # depends on the style alone
    assert torch.equal(torch.as_tensor(again), torch.as_tensor(sigma_a))
    assert float(fixed.style(other, style)) > 0
