"""Tests of the decoder ablation (experiments/decoder_ablation.py) and of the position subsampling it uses.

Tiny runs as in test_train.py: random PNGs, 32 px crops, batch 2, a seeded random MobileNetV2 encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mmd
from adain.decoders import build_decoder
from adain.modelfile import read_model_file, save_model_file
from adain.train import TrainConfig, Trainer, load_checkpoint, read_log
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


@pytest.fixture
def warm_start(tmp_path: Path) -> Path:
    """A model file with a seeded MobileNetV2 decoder: the warm start every run begins from."""
    torch.manual_seed(7)
    return save_model_file(tmp_path / "warm.pth", build_decoder("mobilenet_v2"), encoder_name="mobilenet_v2")


def _config(tmp_path: Path, warm_start: Path | None, iterations: int = 1, methods: str = "") -> Path:
    path = tmp_path / "ablation.toml"
    init = "" if warm_start is None else f'init_decoder = "{warm_start}"'
    path.write_text(
        f"""seeds = [3, 4]
output = "{tmp_path / "out"}"
reference = "meanstd"
[train]
content_dir = "unused"
style_dir = "unused"
{init}
layer_normalisation = "initial"
style_positions = 16
layers = ["s4", "s8", "s16"]
style_weight = 10.0
iterations = {iterations}
checkpoint_every = 1
{chr(10).join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())}
[methods.meanstd]
style_loss = {{ name = "meanstd" }}
[methods.mmd_gaussian]
style_loss = {{ name = "mmd", kernel = {{ name = "gaussian" }} }}
{methods}"""
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


def test_ablation_trains_every_method_and_seed_from_one_start(data, tmp_path, warm_start, capsys) -> None:
    config_path = _config(tmp_path, warm_start)
    assert decoder_ablation.main(["--config", str(config_path), "--data", str(data)]) == 0
    out = tmp_path / "out"
    calibration = json.loads((out / "calibration.json").read_text())
    # one style weight: the paper weighting's initial style term of the reference, per layer, times 10
    config = decoder_ablation.load_config(config_path, data=data)
    paper = config.methods["meanstd"].replace(layer_normalisation="none", layer_weighting="auto")
    _, reference = Trainer(paper, log=lambda msg: None).next_batch_losses()
    assert calibration["style_weight"] == pytest.approx(10.0 * reference / 3, rel=1e-6)
    start = read_model_file(warm_start).decoder_state
    for method in ("meanstd", "mmd_gaussian"):
        for seed in (3, 4):
            run = out / method / f"seed{seed}"
            checkpoint = load_checkpoint(run / "checkpoint.pth")
            saved = checkpoint["config"]
            assert checkpoint["iteration"] == 1 and saved["seed"] == seed
            assert saved["style_weight"] == pytest.approx(calibration["style_weight"])
            assert saved["init_decoder"] == str(warm_start) and saved["style_positions"] == 16
            assert saved["layer_normalisation"] == "initial" and sorted(checkpoint["normalisers"]) == [
                "s16", "s4", "s8",
            ]  # fmt: skip
            # every layer starts with the same share: the style term of iteration 1 is the number of layers
            assert read_log(run / "log.csv")[0]["style"] == pytest.approx(3.0, rel=1e-5)
            # and every run began at the warm start (the normaliser is the start's loss on the first batch)
            fresh = TrainConfig.from_dict(saved).replace(
                output=str(tmp_path / "probe"), layer_normalisation="none", layer_weighting="ones"
            )
            probe = Trainer(fresh, log=lambda msg: None)
            assert all(torch.equal(probe.decoder.state_dict()[k], v) for k, v in start.items())
            _, plain = probe.next_batch_losses()
            assert plain == pytest.approx(sum(checkpoint["normalisers"].values()), rel=1e-5)
    seeds = [load_checkpoint(out / "meanstd" / f"seed{k}" / "checkpoint.pth")["normalisers"] for k in (3, 4)]
    assert seeds[0] != seeds[1]  # each seed's own first batch
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["calibration"] == calibration and manifest["seeds"] == [3, 4]
    assert set(manifest["seconds"]) == {f"{m}/seed{k}" for m in ("meanstd", "mmd_gaussian") for k in (3, 4)}

    # a longer schedule continues one run from its checkpoint (the calibration is reused)
    longer = _config(tmp_path, warm_start, iterations=2)
    args = ["--config", str(longer), "--data", str(data), "--only", "mmd_gaussian", "--seeds", "4"]
    assert decoder_ablation.main(args) == 0
    assert load_checkpoint(out / "mmd_gaussian" / "seed4" / "checkpoint.pth")["iteration"] == 2
    assert load_checkpoint(out / "mmd_gaussian" / "seed3" / "checkpoint.pth")["iteration"] == 1
    assert json.loads((out / "calibration.json").read_text()) == calibration
    # the warm start changed (e.g. trained further): the calibration no longer describes the runs
    torch.manual_seed(8)
    save_model_file(warm_start, build_decoder("mobilenet_v2"), encoder_name="mobilenet_v2")
    assert decoder_ablation.main(["--config", str(longer), "--data", str(data)]) == 2
    assert "another warm-start decoder" in capsys.readouterr().err


def test_ablation_needs_its_warm_start_decoder(data, tmp_path, capsys) -> None:
    assert decoder_ablation.main(["--config", str(_config(tmp_path, None)), "--data", str(data)]) == 2
    assert "train.init_decoder" in capsys.readouterr().err
    gone = tmp_path / "recon" / "checkpoint.pth"
    path = _config(tmp_path, gone)
    with pytest.raises(ConfigError, match=rf"{path}.*{gone} does not exist.*default_model train --stage"):
        decoder_ablation.load_config(path, data=data)


def test_ablation_config_errors_name_file_and_key(data, tmp_path, warm_start, capsys) -> None:
    path = _config(tmp_path, warm_start)
    path.write_text(path.read_text().replace("style_weight = 10.0", "style_wieght = 10.0"))
    assert decoder_ablation.main(["--config", str(path), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "style_wieght" in err
    path = _config(tmp_path, warm_start)
    path.write_text(path.read_text().replace('reference = "meanstd"', 'reference = "nope"'))
    with pytest.raises(ConfigError, match="reference"):
        decoder_ablation.load_config(path, data=data)
    with pytest.raises(ConfigError, match=r"default_model prepare"):  # no data set: say how to make one
        decoder_ablation.load_config(_config(tmp_path, warm_start))
    # the same positions (and everything but the loss) for every method
    per_method = _config(tmp_path, warm_start, methods="style_positions = 8\n")
    with pytest.raises(ConfigError, match=r"methods\.mmd_gaussian.*style_positions"):
        decoder_ablation.load_config(per_method, data=data)
    path = _config(tmp_path, warm_start)
    path.write_text(
        path.read_text().replace('layer_normalisation = "initial"', 'layer_normalisation = "none"')
    )
    with pytest.raises(ConfigError, match="layer_normalisation"):
        decoder_ablation.load_config(path, data=data)
    path = _config(tmp_path, warm_start)
    path.write_text(path.read_text().replace("seeds = [3, 4]", "seeds = [3, 3]"))
    with pytest.raises(ConfigError, match="seeds"):
        decoder_ablation.load_config(path, data=data)
    config = decoder_ablation.load_config(_config(tmp_path, warm_start), data=data)
    with pytest.raises(ConfigError, match="no method"):
        decoder_ablation.train(config, only=["nope"])
    with pytest.raises(ConfigError, match="seed"):
        decoder_ablation.train(config, seeds=[5])
    assert (
        decoder_ablation.main(
            ["--config", str(_config(tmp_path, warm_start)), "--data", str(data), "--evaluate"]
        )
        == 2
    )
    assert "decoder_final.pth" in capsys.readouterr().err  # nothing trained yet


@pytest.mark.slow
def test_ablation_evaluates_every_run_on_held_out_pairs(
    data, tmp_path, warm_start, shared_dir, mobilenet_weights
):
    held = tmp_path / "held"
    for name in ("content", "style"):
        (held / name).mkdir(parents=True)
        for k, image in enumerate(sorted((data / name).iterdir())[:2]):
            (held / name / f"{name}{k}.png").write_bytes(image.read_bytes())
    evaluate = f"""[evaluate]
content_dir = "{held / "content"}"
style_dir = "{held / "style"}"
content_size = 64
style_size = 64
scorer = "{shared_dir / "tools" / "score_stylization.py"}"
bootstrap_resamples = 200
"""
    path = _config(tmp_path, warm_start)
    path.write_text(path.read_text() + evaluate)
    args = ["--config", str(path), "--data", str(data)]
    assert decoder_ablation.main(args) == 0
    assert decoder_ablation.main([*args, "--evaluate"]) == 0
    heldout = tmp_path / "out" / "heldout"
    for method in ("meanstd", "mmd_gaussian"):
        for seed in (3, 4):
            rows = (heldout / method / f"seed{seed}" / "scores.csv").read_text().splitlines()
            assert rows[0] == "content,style,style_ratio,content_ratio" and len(rows) == 1 + 4  # 2 × 2 pairs
    summary = (heldout / "summary.csv").read_text().splitlines()
    assert summary[0] == "method,metric,seeds,median,low,high,n" and len(summary) == 1 + 2 * 2
    assert all(line.endswith(",8") and ",3 4," in line for line in summary[1:])  # seeds × pairs
    for line in summary[1:]:
        median, low, high = (float(v) for v in line.split(",")[3:6])
        assert low <= median <= high
    assert len((heldout / "by_seed.csv").read_text().splitlines()) == 1 + 4
    # scores are reused while the model is the same, refused once it changed
    assert decoder_ablation.main([*args, "--evaluate"]) == 0
    longer = _config(tmp_path, warm_start, iterations=2)
    longer.write_text(longer.read_text() + evaluate)
    assert decoder_ablation.main(["--config", str(longer), "--data", str(data), "--only", "meanstd"]) == 0
    assert decoder_ablation.main(["--config", str(longer), "--data", str(data), "--evaluate"]) == 1
    assert (
        decoder_ablation.main(["--config", str(longer), "--data", str(data), "--evaluate", "--overwrite"])
        == 0
    )


def test_evaluate_pins_the_stylize_precision(tmp_path) -> None:
    from experiments.ablation_heldout import EVALUATE_DEFAULTS, settings

    assert EVALUATE_DEFAULTS["precision"] == "fp32"  # not "auto": scores must not depend on AMX
    with pytest.raises(ConfigError, match=r"cfg\.toml: key 'evaluate\.precision' must be one of .*'bf17'"):
        settings({"precision": "bf17"}, "cfg.toml")
