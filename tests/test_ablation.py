"""Tests of the decoder ablation (experiments/decoder_ablation.py) and of the position subsampling it uses.

Tiny runs as in test_train.py: random PNGs, 32 px crops, batch 2, a seeded random MobileNetV2 encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mmd
from adain.modelfile import read_model_file
from adain.train import TrainConfig, Trainer, load_checkpoint
from experiments import decoder_ablation
from experiments.runs import ConfigError

TINY = dict(
    encoder="mobilenet_v2", pretrained=False, image_size=40, crop_size=32, batch_size=2, num_samples=1,
    device="cpu", progress=False,
)  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def data(tmp_path: Path, write_random_images) -> Path:
    write_random_images(tmp_path / "data" / "content", 4, 0)
    write_random_images(tmp_path / "data" / "style", 4, 1)
    return tmp_path / "data"


def _config(tmp_path: Path, iterations: int = 2) -> Path:
    path = tmp_path / "ablation.toml"
    path.write_text(
        f"""seed = 3
output = "{tmp_path / "out"}"
reference = "meanstd"
[train]
content_dir = "unused"
style_dir = "unused"
style_weight = 10.0
iterations = {iterations}
checkpoint_every = 1
{chr(10).join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())}
[methods.meanstd]
style_loss = {{ name = "meanstd" }}
[methods.gram]
style_loss = {{ name = "gram" }}
[methods.mmd_gaussian]
style_loss = {{ name = "mmd", kernel = {{ name = "gaussian" }} }}
style_positions = 16
"""
    )
    return path


def test_random_positions_subsets_and_is_seeded() -> None:
    feats = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    a = mmd.random_positions(feats, 7, torch.Generator().manual_seed(0))
    b = mmd.random_positions(feats, 7, torch.Generator().manual_seed(0))
    assert a.shape == (2, 3, 7) and torch.equal(a, b)
    flat = feats.flatten(2)
    index = (a[0, 0] - flat[0, 0, 0]).long()  # positions picked, read off channel 0
    assert len(set(index.tolist())) == 7  # without replacement
    assert torch.equal(a, flat[..., index])  # the same positions for every map and channel
    assert not torch.equal(a, mmd.random_positions(feats, 7, torch.Generator().manual_seed(1)))
    assert torch.equal(mmd.random_positions(feats, 20, torch.Generator()), flat)  # count ≥ M: all
    with pytest.raises(ValueError, match="count"):
        mmd.random_positions(feats, 0, torch.Generator())


def test_style_positions_change_the_loss_deterministically_and_keep_global_rng(data, tmp_path) -> None:
    def losses(**extra) -> tuple[float, float]:
        config = TrainConfig(str(data / "content"), str(data / "style"), output=str(tmp_path / "x"),
                             style_loss={"name": "mmd", "kernel": "gaussian"}, **TINY, **extra)  # fmt: skip
        return Trainer(config, log=lambda msg: None).next_batch_losses()

    rng = torch.get_rng_state()
    full, sub, again = losses(), losses(style_positions=8), losses(style_positions=8)
    assert sub == again and sub[1] != full[1] and sub[0] == full[0]  # only the style term changes
    assert torch.equal(torch.get_rng_state(), rng)
    with pytest.raises(ValueError, match="style_positions"):
        TrainConfig("a", "b", style_positions=0)


def test_next_batch_losses_changes_no_state(data, tmp_path) -> None:
    def run(peek: bool, out: str) -> dict:
        config = TrainConfig(str(data / "content"), str(data / "style"), output=str(tmp_path / out),
                             iterations=2, **TINY)  # fmt: skip
        trainer = Trainer(config, log=lambda msg: None)
        if peek:
            trainer.next_batch_losses()
        trainer.run()
        return load_checkpoint(tmp_path / out / "checkpoint.pth")["decoder"]

    a, b = run(True, "a"), run(False, "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ablation_calibrates_trains_every_method_and_resumes(data, tmp_path) -> None:
    config_path = _config(tmp_path)
    assert decoder_ablation.main(["--config", str(config_path), "--data", str(data)]) == 0
    out = tmp_path / "out"
    calibration = json.loads((out / "calibration.json").read_text())
    initial = calibration["initial_style_loss"]
    assert calibration["style_weight"]["meanstd"] == pytest.approx(10.0)
    for name in ("gram", "mmd_gaussian"):  # same style term at the start as the reference's
        weight = calibration["style_weight"][name]
        assert weight * initial[name] == pytest.approx(10.0 * initial["meanstd"], rel=1e-9)
    for name in ("meanstd", "gram", "mmd_gaussian"):
        checkpoint = load_checkpoint(out / name / "checkpoint.pth")
        assert checkpoint["iteration"] == 2
        assert checkpoint["config"]["style_weight"] == pytest.approx(calibration["style_weight"][name])
        assert checkpoint["config"]["seed"] == 3
        assert read_model_file(out / name / "decoder_final.pth").encoder_name == "mobilenet_v2"
    assert load_checkpoint(out / "mmd_gaussian" / "checkpoint.pth")["config"]["style_positions"] == 16
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["calibration"] == calibration and manifest["seed"] == 3
    assert set(manifest["seconds"]) == {"meanstd", "gram", "mmd_gaussian"}

    # a longer schedule continues the runs from their checkpoints (the calibration is reused)
    longer = _config(tmp_path, iterations=3)
    args = ["--config", str(longer), "--data", str(data), "--only", "gram"]
    assert decoder_ablation.main(args) == 0
    assert load_checkpoint(out / "gram" / "checkpoint.pth")["iteration"] == 3
    assert load_checkpoint(out / "meanstd" / "checkpoint.pth")["iteration"] == 2
    assert json.loads((out / "calibration.json").read_text()) == calibration


def test_ablation_config_errors_name_file_and_key(data, tmp_path, capsys) -> None:
    path = _config(tmp_path)
    path.write_text(path.read_text().replace("style_weight = 10.0", "style_wieght = 10.0"))
    assert decoder_ablation.main(["--config", str(path), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "style_wieght" in err
    path = _config(tmp_path)
    path.write_text(path.read_text().replace('reference = "meanstd"', 'reference = "nope"'))
    with pytest.raises(ConfigError, match="reference"):
        decoder_ablation.load_config(path)
    with pytest.raises(ConfigError, match=r"experiments\.training_data"):  # no data set: say how to make one
        decoder_ablation.load_config(_config(tmp_path))
    with pytest.raises(ConfigError, match="no method"):
        decoder_ablation.train(decoder_ablation.load_config(_config(tmp_path), data=data), only=["nope"])
