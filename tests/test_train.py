"""Tests of decoder training (``adain train``): data, end-to-end CLI, exact resume, atomicity, failures.

Tiny runs: 6 random PNGs per folder, 40 px shorter side, 32 px crops, batch 2, MobileNetV2 (its decoder is
small); a seeded random encoder except in the one test that uses the real ImageNet weights.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import adain.train
import mmd.objective
from adain.cli import main
from adain.data import ImageFolder, InfiniteSampler
from adain.errors import ImageError
from adain.io import SkippedFileWarning
from adain.modelfile import load_model, read_model_file
from adain.train import TrainConfig, Trainer, load_checkpoint, read_log

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["--image-size", "40", "--crop-size", "32", "--batch-size", "2", "--encoder", "mobilenet_v2"]
RANDOM = [*TINY, "--random-encoder", "--device", "cpu", "--no-progress", "--samples", "1"]


@pytest.fixture
def data(tmp_path: Path, write_random_images) -> tuple[Path, Path]:
    content, style = tmp_path / "content", tmp_path / "style"
    write_random_images(content, 6, 0, nested=True)
    write_random_images(style, 6, 1, nested=True)
    return content, style


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _args(data: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    return ["train", "--content-dir", str(data[0]), "--style-dir", str(data[1]), "--output", str(out), *extra]


# ---- data ----------------------------------------------------------------------------------------------


def test_sampler_resumes_exactly_and_shards_each_epoch() -> None:
    full = InfiniteSampler(5, seed=3, stream=1)
    stream = [d for d, _ in zip(full, range(23), strict=False)]
    resumed = InfiniteSampler.from_state_dict(5, full.state_dict(consumed=9))
    assert [d for d, _ in zip(resumed, range(14), strict=False)] == stream[9:]
    assert sorted(i for i, _ in stream[:5]) == list(range(5))  # each epoch is a permutation
    assert stream[:5] != stream[5:10]  # a new order each epoch
    # two ranks together draw every file of an epoch, each crop seeded as in the single process
    ranks = [InfiniteSampler(5, seed=3, stream=1, rank=r, world_size=2) for r in (0, 1)]
    shard = [d for r in ranks for d, _ in zip(r, range(3), strict=False)]
    assert {i for i, _ in shard} == set(range(5))
    assert set(stream[:5]) <= set(shard)
    with pytest.raises(ValueError, match="same files"):
        InfiniteSampler.from_state_dict(6, full.state_dict(consumed=9))


def test_image_folder_crops_deterministically_and_skips_bad_files(tmp_path, write_random_images) -> None:
    write_random_images(tmp_path / "d", 3, 0, nested=True)
    (tmp_path / "d" / "notes.txt").write_text("not an image")
    bad = tmp_path / "d" / "zz_bad.png"  # passes the header check, fails to decode
    good = (tmp_path / "d" / "img0.png").read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    with pytest.warns(SkippedFileWarning, match="notes.txt"):
        folder = ImageFolder(tmp_path / "d", image_size=40, crop_size=32)
    assert len(folder) == 4 and folder.paths[-1] == bad
    a, b = folder[(0, 7)], folder[(0, 7)]
    assert a.shape == (3, 32, 32) and torch.equal(a, b)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, y = folder[(3, 1)], folder[(3, 2)]  # the bad file: skipped, the next file (wrapping) used
    assert x.shape == y.shape == (3, 32, 32)
    assert len([w for w in caught if "zz_bad.png" in str(w.message)]) == 1  # one warning per file


def test_folder_without_images_is_an_error_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="empty: no usable image"):
        ImageFolder(empty, 40, 32)


# ---- end to end ----------------------------------------------------------------------------------------


def test_cli_end_to_end_with_real_encoder(data, tmp_path, mobilenet_weights, capsys) -> None:
    out = tmp_path / "run"
    code = main(_args(data, out, *TINY, "--iterations", "3", "--checkpoint-every", "2", "--no-progress"))
    assert code == 0
    assert {p.name for p in out.iterdir()} == {
        "checkpoint.pth",
        "log.csv",
        "loss.png",
        "samples",
        "decoder_final.pth",
    }
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["iter_0000002.png", "iter_0000003.png"]
    rows = read_log(out / "log.csv")
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite(r["total"]) and r["images_per_s"] > 0 for r in rows)
    assert rows[1]["lr"] == pytest.approx(1e-4 / (1 + 5e-5))
    ckpt = load_checkpoint(out / "checkpoint.pth")
    assert ckpt["iteration"] == 3 and ckpt["data"]["content"]["consumed"] == 6
    assert ckpt["config"]["style_loss"] == {"name": "meanstd"} and ckpt["config"]["pretrained"] is True
    # a checkpoint is a model file too: a run stopped early still gives a usable model
    early = load_model(out / "checkpoint.pth").decoder.state_dict()
    assert all(torch.equal(early[k], v) for k, v in ckpt["decoder"].items())
    model = load_model(out / "decoder_final.pth")
    assert model.encoder_name == "mobilenet_v2"
    final = model.decoder.state_dict()
    assert all(torch.equal(final[k].cpu(), v) for k, v in ckpt["decoder"].items())
    assert read_model_file(out / "decoder_final.pth").config["trained_iterations"] == 3
    with Image.open(out / "loss.png") as im:
        assert im.size[0] > 100


@pytest.mark.parametrize(
    "loss", [["--style-loss", "gram"], ["--style-loss", "mmd", "--kernel", "gaussian", "--sigma", "median"]]
)
def test_other_style_losses_train(data, tmp_path, loss) -> None:
    out = tmp_path / "run"
    rng = torch.get_rng_state()
    assert main(_args(data, out, *RANDOM, *loss, "--iterations", "1", "--layers", "s4,s16")) == 0
    assert load_checkpoint(out / "checkpoint.pth")["config"]["layers"] == ["s4", "s16"]
    assert torch.equal(torch.get_rng_state(), rng)  # no global random state used or changed


def test_usage_errors(data, tmp_path, capsys) -> None:
    assert main(_args(data, tmp_path / "a", *RANDOM, "--crop-size", "24", "--iterations", "1")) == 2
    assert "multiple of" in capsys.readouterr().err
    assert main(_args(data, tmp_path / "b", *RANDOM, "--layers", "relu1_1", "--iterations", "1")) == 2
    assert "no layer" in capsys.readouterr().err
    assert main(_args(data, tmp_path / "c", *RANDOM, "--iterations", "1")) == 0
    assert main(_args(data, tmp_path / "c", *RANDOM, "--iterations", "1")) == 1  # would overwrite a run
    assert "--resume" in capsys.readouterr().err


def test_init_decoder_and_cpu_options(data, tmp_path, capsys) -> None:
    """``--init-decoder`` starts from another run's decoder (a checkpoint or a model file); the CPU options
    (style augmentation, image cache, channels-last) train and are recorded in the checkpoint."""
    first, second = tmp_path / "first", tmp_path / "second"
    cpu = ("--style-augment", "--cache-images", "--channels-last")
    assert main(_args(data, first, *RANDOM, *cpu, "--iterations", "1")) == 0
    trained = load_checkpoint(first / "checkpoint.pth")
    assert {
        k: trained["config"][k] for k in ("style_augment", "cache_images", "channels_last")
    } == dict.fromkeys(("style_augment", "cache_images", "channels_last"), True)
    for source in (first / "checkpoint.pth", first / "decoder_final.pth"):
        config = TrainConfig(
            content_dir=str(data[0]), style_dir=str(data[1]), output=str(second), encoder="mobilenet_v2",
            pretrained=False, image_size=40, crop_size=32, batch_size=2, iterations=1, device="cpu",
            progress=False, num_samples=0, init_decoder=str(source),
        )  # fmt: skip
        start = Trainer(config, log=lambda msg: None).decoder.state_dict()
        assert all(torch.equal(start[k], v) for k, v in trained["decoder"].items())
    other = _args(
        data,
        tmp_path / "other",
        *RANDOM,
        "--encoder",
        "vgg19",
        "--init-decoder",
        str(first / "checkpoint.pth"),
    )
    assert main([*other, "--iterations", "1"]) != 0
    assert "not 'vgg19'" in capsys.readouterr().err
    missing = _args(data, tmp_path / "m", *RANDOM, "--init-decoder", str(tmp_path / "gone.pth"))
    assert main([*missing, "--iterations", "1"]) != 0
    assert "gone.pth does not exist" in capsys.readouterr().err


# ---- exact resume --------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--layer-normalisation", "initial"]], ids=["plain", "normalised"])
def test_resume_after_sigkill_is_exact(data, tmp_path, extra) -> None:
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "adain",
        *_args(data, killed, *RANDOM, *extra, "--iterations", "60", "--checkpoint-every", "2"),
        # The subprocess sees the real CPU, where ``auto`` may be bf16 (AMX); the in-process runs below
        # see the AVX2-only host of conftest's ``avx2_only_host`` and resolve ``auto`` to fp32.
        "--precision",
        "fp32",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240  # a loaded machine may take a while to start the run
        while (
            not (killed / "checkpoint.pth").exists() and proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        _, err = proc.communicate(timeout=30)
    assert (killed / "checkpoint.pth").exists(), err.decode()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    k = load_checkpoint(killed / "checkpoint.pth")["iteration"]
    n = k + 3  # resume across a checkpoint boundary
    assert main(_args(data, killed, *RANDOM, "--resume", "--iterations", str(n))) == 0

    straight = tmp_path / "straight"
    straight_args = [*RANDOM, *extra, "--iterations", str(n), "--checkpoint-every", "2"]
    assert main(_args(data, straight, *straight_args)) == 0
    a, b = load_checkpoint(killed / "checkpoint.pth"), load_checkpoint(straight / "checkpoint.pth")
    assert a["iteration"] == b["iteration"] == n
    assert a["normalisers"] == b["normalisers"]  # reused from the checkpoint, not redrawn on resume
    assert (a["normalisers"] is None) == (not extra)
    assert a["decoder"].keys() == b["decoder"].keys()
    assert all(torch.equal(a["decoder"][key], b["decoder"][key]) for key in a["decoder"])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[i][m], sb[i][m]) for i in sa for m in sa[i])
    assert a["data"] == b["data"]
    ra, rb = read_log(killed / "log.csv"), read_log(straight / "log.csv")
    assert [r["iteration"] for r in ra] == list(range(1, n + 1))  # rows after the checkpoint dropped
    assert [r["total"] for r in ra] == [r["total"] for r in rb]


@pytest.mark.parametrize("loss", [["--style-loss", "meanstd"], ["--style-loss", "gram"]])
def test_initial_layer_normalisation_starts_every_layer_at_one(data, tmp_path, loss) -> None:
    """Each layer's term divided by its value at the starting decoder on the first batch: the style term of
    iteration 1 is the number of layers (equal weights) for every loss; the normalisers are those values."""
    out, layers = tmp_path / "run", ["s4", "s8", "s16"]
    args = [*RANDOM, *loss, "--layers", ",".join(layers), "--style-weight", "3"]
    assert main(_args(data, out, *args, "--layer-normalisation", "initial", "--iterations", "1")) == 0
    row = read_log(out / "log.csv")[0]
    assert row["style"] == pytest.approx(len(layers), rel=1e-5)
    assert row["total"] == pytest.approx(row["content"] + 3 * len(layers), rel=1e-5)
    ckpt = load_checkpoint(out / "checkpoint.pth")
    normalisers = ckpt["normalisers"]
    assert list(normalisers) == layers and all(v > 0 for v in normalisers.values())
    model_config = read_model_file(out / "decoder_final.pth").config
    assert model_config["style_layer_weights"] == dict.fromkeys(layers, 1.0)  # equal, also for meanstd
    assert model_config["style_layer_normalisers"] == normalisers
    # the normalisers are the unnormalised, equally weighted terms of the same decoder on the same batch
    config = TrainConfig.from_dict(ckpt["config"]).replace(
        layer_normalisation="none", layer_weighting="ones", output=str(tmp_path / "x")
    )
    _, plain = Trainer(config, log=lambda msg: None).next_batch_losses()
    assert plain == pytest.approx(sum(normalisers.values()), rel=1e-5)
    assert plain != pytest.approx(len(layers), rel=1e-2)  # so the check above is not trivially met


def test_bad_layer_normalisers_are_errors_naming_the_layer(data, tmp_path, capsys, monkeypatch) -> None:
    with pytest.raises(adain.train.LayerNormaliserError, match=r"'s8'.*positive and finite"):
        adain.train.check_normalisers({"s4": 1.0, "s8": 0.0}, ["s4", "s8"], "test")
    with pytest.raises(adain.train.LayerNormaliserError, match="'s4'"):
        adain.train.check_normalisers({"s4": float("nan"), "s8": 1.0}, ["s4", "s8"], "test")
    with pytest.raises(adain.train.LayerNormaliserError, match="style layers"):
        adain.train.check_normalisers({"s4": 1.0}, ["s4", "s8"], "test")
    args = [*RANDOM, "--layers", "s4,s8", "--layer-normalisation", "initial"]
    assert main(_args(data, tmp_path / "r", *args, "--reconstruction", "--iterations", "1")) == 2
    assert "layer_normalisation" in capsys.readouterr().err
    # a zero term at the starting decoder (the generated features already match the style there)
    real_terms = mmd.objective.StyleObjective.style_terms

    def zero_at_s8(self, generated, style, normalisers=None):
        terms = real_terms(self, generated, style, normalisers)
        return {**terms, "s8": terms["s8"] * 0}

    monkeypatch.setattr(mmd.objective.StyleObjective, "style_terms", zero_at_s8)
    assert main(_args(data, tmp_path / "z", *args, "--iterations", "1")) == 1
    err = capsys.readouterr().err
    assert "first training batch" in err and "'s8'" in err and "positive" in err
    monkeypatch.undo()
    # a checkpoint whose normaliser was zeroed, or lost, is refused on resume, naming file and layer
    out = tmp_path / "run"
    assert main(_args(data, out, *args, "--iterations", "1")) == 0
    state = torch.load(out / "checkpoint.pth", weights_only=True)
    state["training"]["normalisers"]["s8"] = 0.0
    torch.save(state, out / "checkpoint.pth")
    assert main(["train", "--output", str(out), "--resume", "--iterations", "2"]) == 1
    err = capsys.readouterr().err
    assert str(out / "checkpoint.pth") in err and "'s8'" in err
    state["training"]["normalisers"] = None
    torch.save(state, out / "checkpoint.pth")
    assert main(["train", "--output", str(out), "--resume", "--iterations", "2"]) == 1
    assert "holds no layer normalisers" in capsys.readouterr().err


def test_resume_refuses_other_training_settings(data, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "1")) == 0
    cfg = TrainConfig.from_dict(load_checkpoint(out / "checkpoint.pth")["config"])
    cfg = cfg.replace(style_weight=99.0, iterations=2)
    with pytest.raises(adain.train.CheckpointError, match="style_weight"):
        Trainer(cfg).run(resume=out / "checkpoint.pth")


# ---- failures ------------------------------------------------------------------------------------------


def test_interrupted_checkpoint_write_keeps_the_previous_one(data, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "2", "--checkpoint-every", "2")) == 0
    before = (out / "checkpoint.pth").read_bytes()
    real_save = torch.save

    def broken_save(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)
        f.seek(0)
        f.truncate(100)  # half-written …
        raise OSError("disk full")  # … then the write fails

    monkeypatch.setattr(torch, "save", broken_save)
    capsys.readouterr()
    assert main(_args(data, out, *RANDOM, "--resume", "--iterations", "4")) == 1
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert f"adain train: error: cannot write checkpoint {out / 'checkpoint.pth'}: " in err
    assert "Traceback" not in err and [line for line in err.splitlines() if "error" in line] == [
        err.strip().splitlines()[-1]
    ]
    assert (out / "checkpoint.pth").read_bytes() == before
    assert load_checkpoint(out / "checkpoint.pth")["iteration"] == 2
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(data, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "run"
    calls = []
    real = mmd.objective.content_mse

    def nan_at_third(generated, target):
        calls.append(1)
        value = real(generated, target)
        return value * float("nan") if len(calls) == 3 else value

    monkeypatch.setattr(mmd.objective, "content_mse", nan_at_third)
    code = main(_args(data, out, *RANDOM, "--iterations", "5", "--checkpoint-every", "2"))
    assert code == 1
    err = capsys.readouterr().err
    assert "non-finite loss at iteration 3" in err and "last good checkpoint" in err
    assert load_checkpoint(out / "checkpoint.pth")["iteration"] == 2
    assert not (out / "decoder_final.pth").exists()


def test_sigint_saves_a_checkpoint_and_restores_handlers(data, tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    calls = []
    real = mmd.objective.content_mse

    def interrupt_at_second(generated, target):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(generated, target)

    monkeypatch.setattr(mmd.objective, "content_mse", interrupt_at_second)
    code = main(_args(data, out, *RANDOM, "--iterations", "10", "--checkpoint-every", "5"))
    assert code == 128 + signal.SIGINT
    assert load_checkpoint(out / "checkpoint.pth")["iteration"] == 2  # the iteration in flight finished
    assert not (out / "decoder_final.pth").exists()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_sigterm_in_a_subprocess_checkpoints_and_exits_cleanly(data, tmp_path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "adain", *_args(data, out, *RANDOM, "--iterations", "500")]
    cmd += ["--checkpoint-every", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240  # a loaded machine may take a while to start the run
        while not (out / "checkpoint.pth").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert "stopped by signal" in err.decode() and "Traceback" not in err.decode()
    ckpt = load_checkpoint(out / "checkpoint.pth")
    assert 2 <= ckpt["iteration"] < 500
    assert [r["iteration"] for r in read_log(out / "log.csv")][-1] == ckpt["iteration"]
    assert not (out / "decoder_final.pth").exists()


def test_resume_rejects_contradicting_options(data, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "1")) == 0
    assert main(["train", "--output", str(out), "--resume", "--style-weight", "3", "--iterations", "2"]) == 2
    assert "style_weight 3.0 (the checkpoint has 10.0)" in capsys.readouterr().err
    assert (
        main(["train", "--output", str(out), "--resume", "--encoder", "mobilenet_v2", "--iterations", "2"])
        == 0
    )


# ---- issue 13: training faults -------------------------------------------------------------------------


def _one_error_line(err: str) -> str:
    """The stderr of a failed run: exactly one ``adain train: error:`` line and no traceback."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("adain train: error: "), err
    return errors[0]


def test_diverging_weights_are_never_written_and_a_resume_may_lower_lr(data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "2", "--checkpoint-every", "2")) == 0
    before = (out / "checkpoint.pth").read_bytes()
    final = (out / "decoder_final.pth").read_bytes()
    capsys.readouterr()
    real_step = torch.optim.Adam.step

    def diverging_step(self, *a, **kw):  # a step that leaves one weight at inf (as a huge lr would)
        result = real_step(self, *a, **kw)
        with torch.no_grad():
            self.param_groups[0]["params"][0].view(-1)[0] = float("inf")
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", diverging_step)
    assert main(_args(data, out, *RANDOM, "--resume", "--iterations", "4")) == 1
    monkeypatch.undo()
    line = _one_error_line(capsys.readouterr().err)
    assert "weights became non-finite at iteration 3" in line and "lower --lr" in line
    assert str(out / "checkpoint.pth") in line
    assert (out / "checkpoint.pth").read_bytes() == before  # never overwritten with non-finite weights
    assert (out / "decoder_final.pth").read_bytes() == final
    assert main(_args(data, out, *RANDOM, "--resume", "--iterations", "3", "--lr", "1e-5")) == 0
    assert read_log(out / "log.csv")[-1]["lr"] == pytest.approx(1e-5 / (1 + 5e-5 * 2))
    ckpt = load_checkpoint(out / "checkpoint.pth")
    assert ckpt["iteration"] == 3 and ckpt["config"]["lr"] == 1e-5
    assert all(bool(torch.isfinite(v).all()) for v in ckpt["decoder"].values())


@pytest.mark.parametrize("lr, code", [("1e40", 2), ("3e38", 1)])
def test_huge_lr_is_one_error_line(data, tmp_path, capsys, lr, code) -> None:
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "2", "--lr", lr)) == code
    line = _one_error_line(capsys.readouterr().err)
    assert "lr" in line
    assert not (out / "checkpoint.pth").exists() and not (out / "decoder_final.pth").exists()


def test_resume_compares_options_typed_with_their_default_value(data, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "1", "--seed", "1")) == 0
    capsys.readouterr()
    assert main(["train", "--output", str(out), "--resume", "--seed", "0", "--iterations", "2"]) == 2
    assert "seed 0 (the checkpoint has 1)" in capsys.readouterr().err
    assert (
        main(["train", "--output", str(out), "--resume", "--style-loss", "meanstd", "--iterations", "2"]) == 0
    )


def test_resume_refuses_other_images_with_the_same_count(data, tmp_path, capsys, write_random_images) -> None:
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "1")) == 0
    other = tmp_path / "other"
    write_random_images(other, 6, 5, nested=True)  # same names and count, other sizes
    (other / "img0.png").write_bytes((other / "img0.png").read_bytes() + b"\0" * 10)
    capsys.readouterr()
    args = _args((other, data[1]), out, *RANDOM, "--resume", "--iterations", "2")
    assert main(args) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "other content images" in line and str(other) in line


def test_output_that_is_a_file_is_one_error_line(data, tmp_path, capsys) -> None:
    out = tmp_path / "file"
    out.write_text("not a folder")
    assert main(_args(data, out, *RANDOM, "--iterations", "1")) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"output folder {out}" in line and "--output" in line


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(bogus=1), "unknown training config keys: bogus"),
        (lambda c: c.update(batch_size="two"), "batch_size must be an integer"),
        (lambda c: c.update(style_loss={"name": "mmd", "kernel": {"name": "laplace"}}), "unknown kernel"),
    ],
)
def test_malformed_checkpoint_config_is_one_error_line_naming_the_file(
    data, tmp_path, capsys, change, message
):
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "1")) == 0
    payload = torch.load(out / "checkpoint.pth", weights_only=True)
    change(payload["training"]["config"])
    torch.save(payload, out / "checkpoint.pth")
    capsys.readouterr()
    assert main(["train", "--output", str(out), "--resume", "--iterations", "2"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(out / "checkpoint.pth") in line and message in line


def test_model_file_with_non_finite_weights_is_refused_naming_it(data, tmp_path) -> None:
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "1")) == 0
    payload = torch.load(out / "decoder_final.pth", weights_only=True)
    payload["decoder"]["1.weight"][0, 0, 0, 0] = float("inf")
    torch.save(payload, tmp_path / "bad.pth")
    with pytest.raises(adain.train.CheckpointError, match=r"bad\.pth.*1\.weight.*not finite"):
        read_model_file(tmp_path / "bad.pth")


def test_samples_are_written_before_their_checkpoint_and_restored_on_resume(data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    seen = []
    real = adain.train.loop.save_checkpoint

    def recording(path, **kw):
        seen.append(
            (
                kw["training"]["iteration"],
                (out / "samples" / f"iter_{kw['training']['iteration']:07d}.png").exists(),
            )
        )
        return real(path, **kw)

    monkeypatch.setattr(adain.train.loop, "save_checkpoint", recording)
    assert main(_args(data, out, *RANDOM, "--iterations", "2", "--checkpoint-every", "1")) == 0
    assert seen == [(1, True), (2, True)]
    (out / "samples" / "iter_0000002.png").unlink()  # as a kill between checkpoint and samples once left it
    assert main(_args(data, out, *RANDOM, "--resume", "--iterations", "3")) == 0
    assert (out / "samples" / "iter_0000002.png").exists()


def test_no_progress_bar_when_stderr_is_not_a_terminal(data, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    args = [a for a in _args(data, out, *RANDOM, "--iterations", "2") if a != "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "it/s" not in err and "it]" not in err and "\r" not in err
    assert err.count("wrote ") == 1  # the final line once


def test_checkpoint_writer_refuses_non_finite_weights(tmp_path) -> None:
    from adain.train.checkpoint import TrainingWriteError, save_checkpoint

    state = {"w": torch.tensor([1.0, float("nan")])}
    with pytest.raises(TrainingWriteError, match=r"not writing .*checkpoint\.pth.*w are not finite"):
        save_checkpoint(tmp_path / "checkpoint.pth", encoder_name="mobilenet_v2", decoder_state=state,
                        config={}, training={})  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_reconstruction_warm_start_inverts_the_encoder(data, tmp_path, capsys) -> None:
    """``--reconstruction``: the target is E(c) (no AdaIN), the second term is the pixel MSE between D(E(c))
    and c, the style images are not encoded; ``pixel_weight`` without it is refused."""
    config = TrainConfig(
        content_dir=str(data[0]), style_dir=str(data[1]), output=str(tmp_path / "r"), encoder="mobilenet_v2",
        pretrained=False, image_size=40, crop_size=32, batch_size=2, iterations=1, device="cpu",
        progress=False, num_samples=0, reconstruction=True, pixel_weight=3.0,
    )  # fmt: skip
    trainer = Trainer(config, log=lambda msg: None)
    content = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss_c, loss_pixel, _ = trainer.losses(content, torch.full((2, 3, 32, 32), float("nan")))
        target = trainer.encoder(content, layers=trainer.encoder.adain_layer)[trainer.encoder.adain_layer]
        generated = trainer.decoder(target)
        regenerated = trainer.encoder(generated, layers=trainer.encoder.adain_layer)[
            trainer.encoder.adain_layer
        ]
    torch.testing.assert_close(loss_pixel, (generated - content).pow(2).mean())
    torch.testing.assert_close(loss_c, (regenerated - target).pow(2).mean())
    out = tmp_path / "cli"
    assert (
        main(_args(data, out, *RANDOM, "--reconstruction", "--pixel-weight", "3", "--iterations", "2")) == 0
    )
    row = read_log(out / "log.csv")[-1]
    assert row["total"] == pytest.approx(row["content"] + 3 * row["style"], rel=1e-5)
    assert load_checkpoint(out / "checkpoint.pth")["config"]["reconstruction"] is True
    with pytest.raises(ValueError, match="needs reconstruction"):
        config.replace(reconstruction=False)
    assert main(_args(data, tmp_path / "bad", *RANDOM, "--pixel-weight", "1", "--iterations", "1")) == 2
    assert "needs reconstruction" in capsys.readouterr().err


def test_precision_auto_follows_the_hardware_and_is_recorded(data, tmp_path, monkeypatch) -> None:
    """``precision="auto"`` (the default) picks bf16 only where the CPU computes it fast (AMX), says so, and
    the model file records the precision used."""
    import adain.devices

    said: list[str] = []
    base = dict(
        content_dir=str(data[0]), style_dir=str(data[1]), encoder="mobilenet_v2", pretrained=False,
        image_size=40, crop_size=32, batch_size=2, iterations=1, device="cpu", progress=False, num_samples=0,
    )  # fmt: skip
    assert TrainConfig(**base).precision == "auto"
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(adain.devices, "cpu_has_amx_bf16", lambda text=None, n=native: n)
        trainer = Trainer(TrainConfig(**base, output=str(tmp_path / expected)), log=said.append)
        assert trainer.precision == expected
        assert any(f"precision auto → {expected}" in line for line in said)
    result = trainer.run()
    assert read_model_file(result.model_path).config["precision_used"] == "fp32"


# ---- forks (paired ablation arms) and the total-variation term -----------------------------------------


def _tiny_config(data: tuple[Path, Path], output: Path, **changes) -> TrainConfig:
    """The config of ``RANDOM``'s command line (random MobileNetV2 encoder, 32-px crops, batch 2)."""
    return TrainConfig(
        content_dir=str(data[0]),
        style_dir=str(data[1]),
        output=str(output),
        encoder="mobilenet_v2",
        pretrained=False,
        image_size=40,
        crop_size=32,
        batch_size=2,
        device="cpu",
        **changes,
    )


def _decoders_equal(a: dict, b: dict) -> bool:
    return a["decoder"].keys() == b["decoder"].keys() and all(
        torch.equal(a["decoder"][key], b["decoder"][key]) for key in a["decoder"]
    )


def test_fork_without_changes_continues_the_parent_exactly(data, tmp_path, capsys) -> None:
    """A fork takes the whole training state: with no setting changed it is the parent's trajectory."""
    parent, straight, fork = tmp_path / "parent", tmp_path / "straight", tmp_path / "fork"
    assert main(_args(data, parent, *RANDOM, "--iterations", "3")) == 0
    assert main(_args(data, straight, *RANDOM, "--iterations", "5")) == 0
    capsys.readouterr()
    command = ["train", "--fork", str(parent / "checkpoint.pth"), "--output", str(fork), "--iterations", "5"]
    assert main([*command, "--no-progress"]) == 0
    assert "at iteration 3; settings changed: none" in capsys.readouterr().err
    a, b = load_checkpoint(fork / "checkpoint.pth"), load_checkpoint(straight / "checkpoint.pth")
    assert a["iteration"] == b["iteration"] == 5 and _decoders_equal(a, b)
    assert a["data"] == b["data"]
    assert [r["iteration"] for r in read_log(fork / "log.csv")] == [4, 5]
    straight_totals = [r["total"] for r in read_log(straight / "log.csv")]
    assert [r["total"] for r in read_log(fork / "log.csv")] == straight_totals[3:]
    assert a["config"]["forked_from"] == str(parent / "checkpoint.pth")


def test_fork_with_a_tv_weight_changes_only_that_arm(data, tmp_path, capsys) -> None:
    parent, plain, smooth = tmp_path / "parent", tmp_path / "plain", tmp_path / "smooth"
    assert main(_args(data, parent, *RANDOM, "--iterations", "2")) == 0
    ckpt = str(parent / "checkpoint.pth")
    assert main(["train", "--fork", ckpt, "--output", str(plain), "--iterations", "4", "--no-progress"]) == 0
    capsys.readouterr()
    args = ["train", "--fork", ckpt, "--output", str(smooth), "--iterations", "4", "--no-progress"]
    # a fresh random decoder paints nearly flat images (total variation ~1e-14): a weight that shows
    assert main([*args, "--tv-weight", "1e12"]) == 0
    assert "settings changed: tv_weight 0.0 → 1000000000000.0" in capsys.readouterr().err
    a, b = load_checkpoint(plain / "checkpoint.pth"), load_checkpoint(smooth / "checkpoint.pth")
    assert a["config"]["tv_weight"] == 0.0 and b["config"]["tv_weight"] == 1e12
    assert a["data"] == b["data"]  # the same batches: a paired comparison
    assert not _decoders_equal(a, b)
    # the first forked step starts from the same decoder on the same batch: the rows differ by the TV term
    first_plain, first_smooth = read_log(plain / "log.csv")[0], read_log(smooth / "log.csv")[0]
    assert first_plain["content"] == first_smooth["content"] and first_plain["style"] == first_smooth["style"]
    assert first_smooth["total"] > first_plain["total"]
    # a forked run resumes like any other
    assert main(["train", "--resume", "--output", str(smooth), "--iterations", "5", "--no-progress"]) == 0
    assert load_checkpoint(smooth / "checkpoint.pth")["iteration"] == 5


def test_a_fork_measures_layer_normalisers_where_its_style_terms_differ(data, tmp_path, capsys) -> None:
    """A fork that turns ``initial`` normalisation on, or changes the style loss, measures the normalisers at
    the checkpoint's decoder on its own first batch (every layer starts at 1); one that changes neither keeps
    the checkpoint's, so two arms of a normalised run stay comparable."""
    plain, normalised = tmp_path / "plain", tmp_path / "normalised"
    layers = ["--layers", "s4,s8,s16"]
    assert main(_args(data, plain, *RANDOM, *layers, "--iterations", "2")) == 0
    assert (
        main(
            _args(data, normalised, *RANDOM, *layers, "--iterations", "2", "--layer-normalisation", "initial")
        )
        == 0
    )
    saved = load_checkpoint(normalised / "checkpoint.pth")["normalisers"]
    fork = ["train", "--iterations", "3", "--no-progress", *layers]
    cases = {
        "on": (plain, ["--layer-normalisation", "initial"]),
        "loss": (normalised, ["--layer-normalisation", "initial", "--style-loss", "meancov"]),
        "same": (normalised, ["--layer-normalisation", "initial", "--style-weight", "3"]),
    }
    first = {}
    for name, (parent, extra) in cases.items():
        out = tmp_path / name
        command = [*fork, "--fork", str(parent / "checkpoint.pth"), "--output", str(out), *extra]
        assert main(command) == 0, capsys.readouterr().err
        first[name] = (
            read_log(out / "log.csv")[0]["style"],
            load_checkpoint(out / "checkpoint.pth")["normalisers"],
        )
    for name in ("on", "loss"):
        style, normalisers = first[name]
        assert style == pytest.approx(3, rel=1e-5)  # three layers, each at 1 on the fork's first batch
        assert list(normalisers) == ["s4", "s8", "s16"] and normalisers != saved
    style, normalisers = first["same"]
    assert normalisers == saved and style != pytest.approx(3, rel=1e-2)  # the parent's, not re-measured


def test_a_fork_may_train_on_a_larger_style_set(data, tmp_path, capsys, write_random_images) -> None:
    """A data ablation: the fork keeps the decoder, optimiser and content stream and draws its styles over
    the new folder; a resume of the parent on that folder is still refused."""
    parent, same, more = tmp_path / "parent", tmp_path / "same", tmp_path / "more"
    assert main(_args(data, parent, *RANDOM, "--iterations", "2")) == 0
    larger = tmp_path / "larger"
    write_random_images(larger, 9, 7, nested=True)
    ckpt = str(parent / "checkpoint.pth")
    base = ["train", "--fork", ckpt, "--iterations", "4", "--no-progress"]
    assert main([*base, "--output", str(same)]) == 0
    capsys.readouterr()
    assert main([*base, "--output", str(more), "--style-dir", str(larger)]) == 0
    assert f"style images '6 files' → '9 files in {larger}'" in capsys.readouterr().err
    a, b = load_checkpoint(same / "checkpoint.pth"), load_checkpoint(more / "checkpoint.pth")
    assert a["data"]["content"] == b["data"]["content"]  # the same content batches: a paired comparison
    assert a["data"]["style"]["n"] == 6 and b["data"]["style"]["n"] == 9
    assert b["config"]["style_dir"] == str(larger) and b["dataset"]["style"] != a["dataset"]["style"]
    # the first forked step starts from the same decoder on the same contents, with other styles
    first_same, first_more = read_log(same / "log.csv")[0], read_log(more / "log.csv")[0]
    assert first_same["iteration"] == first_more["iteration"] == 3
    assert first_same["style"] != first_more["style"]
    # the forked run resumes on its own images, and the parent still refuses the new folder
    assert main(["train", "--resume", "--output", str(more), "--iterations", "5", "--no-progress"]) == 0
    capsys.readouterr()
    assert (
        main(["train", "--resume", "--output", str(parent), "--style-dir", str(larger), "--iterations", "3"])
        == 1
    )
    assert "9 now" in _one_error_line(capsys.readouterr().err)


def test_tv_term_is_the_decoded_batch_total_variation(data, tmp_path) -> None:
    from adain.gatys import total_variation
    from adain.ops import adaptive_instance_norm

    config = _tiny_config(data, tmp_path / "run", tv_weight=3.0)
    trainer = Trainer(config)
    content, style = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        _, _, loss_tv = trainer.losses(content, style)
        c_feat = trainer.encoder(content, layers=trainer.encoder.adain_layer)[trainer.encoder.adain_layer]
        s_feat = trainer.encoder(style, layers=trainer.encoder.adain_layer)[trainer.encoder.adain_layer]
        decoded = trainer.model(adaptive_instance_norm(c_feat, s_feat))
    torch.testing.assert_close(loss_tv, total_variation(decoded).mean())
    with pytest.raises(ValueError, match="tv_weight"):
        config.replace(tv_weight=-1.0)
    with pytest.raises(ValueError, match="not to reconstruction"):
        config.replace(reconstruction=True)


def test_fork_usage_errors_are_one_line(data, tmp_path, capsys) -> None:
    parent = tmp_path / "parent"
    assert main(_args(data, parent, *RANDOM, "--iterations", "1")) == 0
    ckpt = str(parent / "checkpoint.pth")
    capsys.readouterr()
    assert main(["train", "--fork", ckpt, "--iterations", "2"]) == 2
    assert "--output" in capsys.readouterr().err
    assert main(["train", "--fork", ckpt, "--output", str(parent), "--iterations", "2"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--fork", ckpt, "--resume", "--output", str(tmp_path / "x")]) == 2
    assert "pick one" in capsys.readouterr().err
    other = tmp_path / "other"
    assert main(_args(data, other, *RANDOM, "--iterations", "1")) == 0
    capsys.readouterr()
    assert main(["train", "--fork", ckpt, "--output", str(other), "--iterations", "2", "--no-progress"]) == 1
    assert "exists" in _one_error_line(capsys.readouterr().err)
    assert main(["train", "--fork", str(tmp_path / "nope.pth"), "--output", str(tmp_path / "y")]) == 1
    assert "nope.pth" in _one_error_line(capsys.readouterr().err)


def test_checkpoints_from_before_tv_weight_still_resume(data, tmp_path) -> None:
    """A checkpoint whose config lacks keys added later (tv_weight, forked_from) resumes with defaults."""
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "1")) == 0
    payload = torch.load(out / "checkpoint.pth", weights_only=True)
    for key in ("tv_weight", "forked_from"):
        del payload["training"]["config"][key]
    torch.save(payload, out / "checkpoint.pth")
    assert main(["train", "--output", str(out), "--resume", "--iterations", "2", "--no-progress"]) == 0


# ---- the weight average (--ema-decay) --------------------------------------------------------------------


def test_weight_average_is_the_running_average_of_the_iterates_and_resumes_exactly(data, tmp_path) -> None:
    """ema_3 = d³·w_0 + d²(1−d)·w_1 + d(1−d)·w_2 + (1−d)·w_3 (the average starts at the initial weights),
    stopping and resuming at every iteration gives the straight run's average; decoder_ema.pth holds it."""
    d = 0.5
    split, straight = tmp_path / "split", tmp_path / "straight"
    base = [*RANDOM, "--ema-decay", str(d)]
    config = _tiny_config(data, tmp_path / "init")
    w = [
        {k: v.clone() for k, v in Trainer(config).decoder.state_dict().items()}
    ]  # the seeded initial decoder
    assert main(_args(data, split, *base, "--iterations", "1")) == 0
    w.append(load_checkpoint(split / "checkpoint.pth")["decoder"])
    for n in (2, 3):
        assert (
            main(["train", "--resume", "--output", str(split), "--iterations", str(n), "--no-progress"]) == 0
        )
        w.append(load_checkpoint(split / "checkpoint.pth")["decoder"])
    coefficients = [d**3, d**2 * (1 - d), d * (1 - d), 1 - d]
    ema = load_checkpoint(split / "checkpoint.pth")["ema_decoder"]
    for key, value in ema.items():
        expected = sum(c * wi[key].double() for c, wi in zip(coefficients, w, strict=True))
        torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=1e-7)
    assert not all(torch.equal(ema[k], w[3][k]) for k in ema)  # the average is not the last iterate
    assert main(_args(data, straight, *base, "--iterations", "3", "--checkpoint-every", "2")) == 0
    other = load_checkpoint(straight / "checkpoint.pth")["ema_decoder"]
    assert all(torch.equal(ema[k], other[k]) for k in ema)
    model = read_model_file(split / adain.train.EMA_MODEL_NAME)
    assert all(torch.equal(model.decoder_state[k], ema[k]) for k in ema)
    assert model.config["ema_decay"] == d


def test_weight_average_can_be_turned_on_when_resuming(data, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_args(data, out, *RANDOM, "--iterations", "1")) == 0
    assert load_checkpoint(out / "checkpoint.pth")["ema_decoder"] is None
    assert not (out / adain.train.EMA_MODEL_NAME).exists()
    w1 = load_checkpoint(out / "checkpoint.pth")["decoder"]
    capsys.readouterr()
    resume = ["train", "--resume", "--output", str(out), "--iterations", "2", "--no-progress"]
    assert main([*resume, "--ema-decay", "0.9"]) == 0
    assert "the average starts at its weights" in capsys.readouterr().err
    state = load_checkpoint(out / "checkpoint.pth")
    for key, value in state["ema_decoder"].items():
        expected = 0.9 * w1[key].double() + 0.1 * state["decoder"][key].double()
        torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        TrainConfig.from_dict({**state["config"], "ema_decay": 1.0})


# ---- layer scales: shifting the style term between scales ------------------------------------------------


def test_layer_scales_multiply_the_layer_weights(data, tmp_path) -> None:
    """With initial normalisation every layer starts at 1, so a factor shows as itself in the first
    iteration's style term: layers s4, s8, s16 with s4 × 3 give 3 + 1 + 1."""
    out, layers = tmp_path / "run", ["s4", "s8", "s16"]
    args = [*RANDOM, "--layers", ",".join(layers), "--layer-normalisation", "initial", "--iterations", "1"]
    assert main(_args(data, out, *args, "--layer-scales", "s4=3")) == 0
    assert read_log(out / "log.csv")[0]["style"] == pytest.approx(5.0, rel=1e-5)
    model_config = read_model_file(out / "decoder_final.pth").config
    assert model_config["style_layer_weights"] == {"s4": 3.0, "s8": 1.0, "s16": 1.0}
    assert model_config["layer_scales"] == {"s4": 3.0}


def test_a_fork_with_layer_scales_changes_only_the_style_term(data, tmp_path, capsys) -> None:
    parent, plain, fine = tmp_path / "parent", tmp_path / "plain", tmp_path / "fine"
    assert main(_args(data, parent, *RANDOM, "--iterations", "2")) == 0
    ckpt = str(parent / "checkpoint.pth")
    args = ["train", "--fork", ckpt, "--iterations", "3", "--no-progress"]
    assert main([*args, "--output", str(plain)]) == 0
    capsys.readouterr()
    assert main([*args, "--output", str(fine), "--layer-scales", "s2=4,s4=2"]) == 0
    assert "layer_scales None → {'s2': 4.0, 's4': 2.0}" in capsys.readouterr().err
    a, b = read_log(plain / "log.csv")[0], read_log(fine / "log.csv")[0]
    assert a["content"] == b["content"] and b["style"] > a["style"]  # same decoder, same batch
    assert load_checkpoint(fine / "checkpoint.pth")["config"]["layer_scales"] == {"s2": 4.0, "s4": 2.0}
    # resuming keeps them; typing other scales on --resume contradicts the checkpoint
    resume = ["train", "--resume", "--output", str(fine), "--iterations", "4", "--no-progress"]
    assert main([*resume, "--layer-scales", "s2=1"]) == 2
    assert "layer_scales" in capsys.readouterr().err
    assert main(resume) == 0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("s2=0", "finite factor > 0"),
        ("s2", "LAYER=FACTOR"),
        ("s2=2,s2=3", "each layer once"),
        ("s2=inf", "finite factor > 0"),
        ("relu1_1=2", "not style layers"),
    ],
)
def test_bad_layer_scales_are_refused_before_anything_is_written(
    data, tmp_path, capsys, option, message
) -> None:
    out = tmp_path / "run"
    try:  # argparse refuses malformed text (SystemExit 2); the trainer refuses an unknown layer (status 2)
        status = main(_args(data, out, *RANDOM, "--iterations", "1", "--layer-scales", option))
    except SystemExit as e:
        status = e.code
    assert status == 2
    assert message in capsys.readouterr().err and not (out / "checkpoint.pth").exists()


def test_layer_scales_config_validation(data, tmp_path) -> None:
    config = _tiny_config(data, tmp_path / "run", layer_scales={"s2": 2})
    assert config.layer_scales == {"s2": 2.0} and config.to_dict()["layer_scales"] == {"s2": 2.0}
    assert TrainConfig.from_dict(config.to_dict()) == config
    for bad in ({}, {"s2": -1.0}, {"s2": True}, {3: 1.0}):
        with pytest.raises(ValueError, match="layer_scales"):
            config.replace(layer_scales=bad)
    with pytest.raises(ValueError, match="reconstruction"):
        config.replace(reconstruction=True, pixel_weight=1.0)
