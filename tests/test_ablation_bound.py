"""The perfect-decoder bound of the decoder ablation's held-out evaluation (experiments.ablation_bound).

Tiny and fast: no training (the runs' model files are placeholder bytes and ``adain stylize`` is replaced by
one that paints each pair a flat colour), a seeded random VGG-19 for the inversion (2 L-BFGS iterations at
32 px), and a fake scorer script that scores each output by its mean grey level.
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import adain.encoders
import experiments.default_model_report as report
import experiments.perfect_decoder as perfect_decoder
from adain.errors import OutputError
from experiments import ablation_bound, ablation_heldout, decoder_ablation
from experiments.runs import ConfigError

FAKE_SCORER = """import argparse, pathlib
from PIL import Image, ImageStat
p = argparse.ArgumentParser()
for name in ("--outputs", "--content", "--style"):
    p.add_argument(name, type=pathlib.Path)
a = p.parse_args()
for out in sorted(a.outputs.iterdir()):
    grey = sum(ImageStat.Stat(Image.open(out).convert("RGB")).mean) / 765
    print(f"{out.name}: style ratio {grey:.3f}, content ratio {1 - grey:.3f}")
"""


def _images(folder: Path, prefix: str, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)).save(folder / f"{prefix}{i}.png")


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """An ablation config (2 methods, seed 3) with "finished" runs, 3 held-out contents and 2 styles."""
    for name in ("train_content", "train_style"):
        (tmp_path / name).mkdir()
    (tmp_path / "warm.pth").write_bytes(b"warm")
    _images(tmp_path / "held" / "content", "c", 3, 0)
    _images(tmp_path / "held" / "style", "s", 2, 1)
    (tmp_path / "scorer.py").write_text(FAKE_SCORER)
    path = tmp_path / "ablation.toml"
    path.write_text(
        f"""seeds = [3]
output = "{tmp_path / "out"}"
[train]
content_dir = "{tmp_path / "train_content"}"
style_dir = "{tmp_path / "train_style"}"
init_decoder = "{tmp_path / "warm.pth"}"
encoder = "vgg19_caffe_normalised"
[methods.meanstd]
style_loss = {{ name = "meanstd" }}
[methods.gram]
style_loss = {{ name = "gram" }}
[evaluate]
content_dir = "{tmp_path / "held" / "content"}"
style_dir = "{tmp_path / "held" / "style"}"
content_size = 40
style_size = 32
scorer = "{tmp_path / "scorer.py"}"
bootstrap_resamples = 50
perfect_pairs = 4
perfect_iterations = 2
perfect_size = 32
"""
    )
    for method in ("meanstd", "gram"):
        run = decoder_ablation.run_folder(tmp_path / "out", method, 3)
        run.mkdir(parents=True)
        (run / "decoder_final.pth").write_bytes(method.encode())
    return path


@pytest.fixture
def calls(monkeypatch) -> dict[str, list[Any]]:
    """Replace stylization (a flat colour per model and pair) and the encoder's weights (a seeded random
    VGG-19), and count stylizations, encoder builds and inversions."""
    seen: dict[str, list[Any]] = {"stylize": [], "build": [], "invert": []}

    def stylize(model: Path, contents: Path, styles: Path, out: Path, rep: Any) -> None:
        seen["stylize"].append(model)
        out.mkdir(parents=True)
        for i, c in enumerate(sorted(contents.iterdir())):
            for j, s in enumerate(sorted(styles.iterdir())):
                grey = (len(model.read_bytes()) * 20 + 40 * i + 10 * j) % 256
                Image.new("RGB", (40, 40), (grey,) * 3).save(out / f"{c.stem}_stylized_{s.stem}.png")

    monkeypatch.setattr(report, "_stylize", stylize)
    random_encoder_and_counted_inversions(monkeypatch, seen)
    return seen


def random_encoder_and_counted_inversions(monkeypatch, seen: dict[str, list[Any]]) -> None:
    """Build every encoder with a seeded random initialisation instead of its weights (recorded in
    ``seen["build"]``) and record each inversion's target shape in ``seen["invert"]``."""
    build = adain.encoders.build_encoder

    def random_encoder(name: str, *, weights: Any) -> torch.nn.Module:
        seen.setdefault("build", []).append((name, weights))
        torch.manual_seed(0)
        return build(name, weights=None)

    invert = perfect_decoder.invert_features

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.setdefault("invert", []).append(args[1].shape)
        return invert(*args, **kwargs)

    monkeypatch.setattr(adain.encoders, "build_encoder", random_encoder)
    monkeypatch.setattr(perfect_decoder, "invert_features", counted)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _set(path: Path, key: str, value: str) -> None:
    lines = [
        f"{key} = {value}" if line.startswith(f"{key} =") else line for line in path.read_text().splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")


def _rep(config_path: Path) -> dict[str, Any]:
    config = decoder_ablation.load_config(config_path)
    return ablation_heldout.settings(config.evaluate, str(config_path))


def test_subset_covers_contents_and_styles_in_a_fixed_order(config_path) -> None:
    rep = _rep(config_path)
    pairs = ablation_bound.perfect_subset({**rep, "perfect_pairs": 6}, "f.toml")
    names = [(c.stem, s.stem) for c, s in pairs]
    assert names == [("c0", "s0"), ("c1", "s1"), ("c2", "s0"), ("c0", "s1"), ("c1", "s0"), ("c2", "s1")]
    assert ablation_bound.perfect_subset({**rep, "perfect_pairs": 0}, "f.toml") == []
    with pytest.raises(ConfigError, match=r"f\.toml: key 'evaluate\.perfect_pairs' is 7.*3 × 2"):
        ablation_bound.perfect_subset({**rep, "perfect_pairs": 7}, "f.toml")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("perfect_pairs", "-1"),
        ("perfect_pairs", '"4"'),
        ("perfect_pairs", "true"),
        ("perfect_iterations", "0"),
        ("perfect_iterations", "2.5"),
        ("perfect_size", "0"),
    ],
)
def test_bad_bound_settings_name_file_and_key(config_path, key, value) -> None:
    _set(config_path, key, value)
    with pytest.raises(ConfigError, match=rf"{config_path}: key 'evaluate\.{key}' must be an integer"):
        _rep(config_path)


def test_unknown_bound_key_is_refused(config_path) -> None:
    config_path.write_text(config_path.read_text() + "perfect_pair = 4\n")
    with pytest.raises(ConfigError, match=rf"{config_path}: unknown key.*perfect_pair"):
        _rep(config_path)


def _evaluate(config_path: Path) -> Path:
    config = decoder_ablation.load_config(config_path)
    return ablation_heldout.evaluate_ablation(config, list(config.methods), list(config.seeds))


def test_bound_is_inverted_once_scored_and_summarised(config_path, calls, tmp_path) -> None:
    summary_path = _evaluate(config_path)
    heldout = tmp_path / "out" / "heldout"
    assert calls["build"] == [("vgg19_caffe_normalised", "DEFAULT")] and len(calls["invert"]) == 4
    (folder,) = (heldout / "perfect").iterdir()
    expected = [("c0", "s0"), ("c1", "s1"), ("c2", "s0"), ("c0", "s1")]
    assert sorted(p.name for p in (folder / "images").iterdir()) == sorted(
        f"{c}_stylized_{s}.png" for c, s in expected
    )
    with Image.open(folder / "images" / "c0_stylized_s0.png") as im:
        assert min(im.size) == 32  # perfect_size, not content_size
    bound = _csv(folder / "scores.csv")
    assert [(r["content"], r["style"]) for r in bound] == expected
    assert all(r["iterations"] == "2" and r["stop_reason"] == "max_iterations" for r in bound)
    by_seed = {(r["method"], r["seed"]): r for r in _csv(heldout / "by_seed.csv")}
    assert set(by_seed) == {("meanstd", "3"), ("gram", "3"), ("perfect", "-")}
    assert by_seed[("perfect", "-")]["pairs"] == "4" and by_seed[("gram", "3")]["pairs"] == "6"
    summary = {(r["method"], r["metric"]): r for r in _csv(summary_path)}
    restricted = {(r["method"], r["metric"]): r for r in _csv(heldout / "summary_perfect_pairs.csv")}
    assert set(restricted) == set(summary) and len(summary) == 3 * 2
    runs = {m: _csv(heldout / m / "seed3" / "scores.csv") for m in ("meanstd", "gram")}
    runs["perfect"] = bound
    for (method, metric), row in restricted.items():
        values = [float(r[metric]) for r in runs[method] if (r["content"], r["style"]) in expected]
        assert row["n"] == "4" and float(row["median"]) == pytest.approx(statistics.median(values), abs=1e-3)
        every = [float(r[metric]) for r in runs[method]]
        assert float(summary[(method, metric)]["median"]) == pytest.approx(statistics.median(every), abs=1e-3)
    assert summary[("perfect", "style_ratio")]["seeds"] == "-"
    assert restricted[("meanstd", "style_ratio")]["median"] != summary[("meanstd", "style_ratio")]["median"]

    # a second evaluation reuses the images and the scores: nothing is inverted or stylized again
    settings_text = (folder / "settings.json").read_text()
    _evaluate(config_path)
    assert len(calls["invert"]) == 4 and len(calls["stylize"]) == 2
    # an interrupted inversion (an image without its record) is done again, and only it
    records = json.loads((folder / "inversions.json").read_text())
    del records["c1_stylized_s1.png"]
    (folder / "inversions.json").write_text(json.dumps(records))
    _evaluate(config_path)
    assert len(calls["invert"]) == 5

    # another setting gets another folder; the earlier one is kept as it was
    _set(config_path, "perfect_iterations", "3")
    _evaluate(config_path)
    assert len(calls["invert"]) == 9 and len(calls["stylize"]) == 2  # the runs' scores are still valid
    assert (
        len(list((heldout / "perfect").iterdir())) == 2
        and (folder / "settings.json").read_text() == settings_text
    )
    # a folder whose settings are not its key's is refused
    (newer,) = (p for p in (heldout / "perfect").iterdir() if p != folder)
    (newer / "settings.json").write_text(json.dumps({"perfect_iterations": 99}))
    with pytest.raises(OutputError, match=rf"{newer / 'settings.json'} describes other settings"):
        _evaluate(config_path)

    # without the bound, no perfect rows and no restricted summary left from before
    _set(config_path, "perfect_pairs", "0")
    _evaluate(config_path)
    assert not (heldout / "summary_perfect_pairs.csv").exists()
    assert {r["method"] for r in _csv(heldout / "summary.csv")} == {"meanstd", "gram"}


def test_a_changed_input_file_re_keys_the_bound(config_path, tmp_path) -> None:
    rep = _rep(config_path)
    pairs = ablation_bound.perfect_subset(rep, "f.toml")
    key, described = ablation_bound.perfect_key(pairs, rep, "vgg19_caffe_normalised", "DEFAULT")
    assert [p["content"] for p in described["pairs"]] == ["c0.png", "c1.png", "c2.png", "c0.png"]
    assert ablation_bound.perfect_key(pairs, rep, "vgg19_caffe_normalised", "DEFAULT")[0] == key
    _images(tmp_path / "other", "c", 1, 9)
    (tmp_path / "held" / "content" / "c0.png").write_bytes((tmp_path / "other" / "c0.png").read_bytes())
    assert ablation_bound.perfect_key(pairs, rep, "vgg19_caffe_normalised", "DEFAULT")[0] != key
    assert (
        ablation_bound.perfect_key(pairs, {**rep, "perfect_size": 64}, "vgg19_caffe_normalised", "DEFAULT")[0]
        != key
    )


def test_a_method_named_like_the_bound_is_refused(config_path, calls) -> None:
    config_path.write_text(config_path.read_text().replace("[methods.gram]", "[methods.perfect]"))
    run = decoder_ablation.run_folder(config_path.parent / "out", "perfect", 3)
    run.mkdir(parents=True)
    (run / "decoder_final.pth").write_bytes(b"x")
    with pytest.raises(ConfigError, match="'perfect' is the bound's"):
        _evaluate(config_path)
