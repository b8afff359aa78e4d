"""experiments.default_model: the held-out split, the snapshot/seeding of staged training and the report."""

from __future__ import annotations

import csv
import hashlib
import os
import re
import statistics
from pathlib import Path

import pytest
from PIL import Image

from experiments import default_model


def _config(tmp_path: Path) -> dict:
    return {
        "data": {
            "training_data": str(tmp_path / "td"),
            "paper": str(tmp_path / "paper"),
            "work": str(tmp_path / "work"),
            "snapshots": str(tmp_path / "snapshots"),
            "held_out_styles": ["b"],
            "extra_style_folders": ["walls"],
        },
        "stage": [{"name": "s1", "args": [], "iterations": 1}],
        "report": {"content_size": 64, "style_size": 64},
    }


def test_prepare_holds_out_the_named_styles(tmp_path: Path, write_random_images) -> None:
    write_random_images(tmp_path / "td" / "content" / "walls", 2, 0)
    write_random_images(tmp_path / "td" / "content" / "photos", 3, 1)
    styles = tmp_path / "paper" / "style"
    write_random_images(styles, 3, 2)
    for i, name in enumerate("abc"):
        (styles / f"img{i}.png").rename(styles / f"{name}.png")
    work = default_model.prepare(_config(tmp_path))
    assert sorted(p.name for p in (work / "heldout_style").iterdir()) == ["b.png"]
    train_styles = sorted(p.name for p in (work / "style").iterdir())
    assert train_styles == ["a.png", "c.png", "walls__img0.png", "walls__img1.png"]
    assert len(list((work / "content").iterdir())) == 5
    assert all(p.resolve().is_file() for p in (work / "style").iterdir())
    with pytest.raises(SystemExit, match="held-out styles not found"):
        config = _config(tmp_path)
        config["data"]["held_out_styles"] = ["zzz"]
        default_model.prepare(config)


def test_prepare_links_wallpapers_and_photos_for_a_photo_stage(tmp_path: Path, write_random_images) -> None:
    write_random_images(tmp_path / "td" / "content" / "walls", 2, 0)
    write_random_images(tmp_path / "paper" / "style", 2, 2)
    (tmp_path / "paper" / "style" / "img1.png").rename(tmp_path / "paper" / "style" / "b.png")
    config = _config(tmp_path)
    config["data"]["photo_data"] = str(tmp_path / "photos")
    with pytest.raises(SystemExit, match=r"photo_data: .*photos/content does not exist.*--styles none"):
        default_model.prepare(config)
    write_random_images(tmp_path / "photos" / "content" / "opencv-doc", 3, 1)
    work = default_model.prepare(config)
    assert len(list((work / "content").iterdir())) == 2  # the wallpaper stages' set is unchanged
    names = sorted(p.name for p in (work / "content_photos").iterdir())
    assert names == [f"opencv-doc__img{i}.png" for i in range(3)] + [f"walls__img{i}.png" for i in range(2)]
    assert all(p.resolve().is_file() for p in (work / "content_photos").iterdir())


def test_prepare_links_the_training_styles_and_paintings_for_a_painting_stage(
    tmp_path: Path, write_random_images
) -> None:
    write_random_images(tmp_path / "td" / "content" / "walls", 2, 0)
    write_random_images(tmp_path / "paper" / "style", 2, 2)
    (tmp_path / "paper" / "style" / "img1.png").rename(tmp_path / "paper" / "style" / "b.png")
    config = _config(tmp_path)
    config["data"]["painting_data"] = str(tmp_path / "paintings")
    with pytest.raises(
        SystemExit, match=r"painting_data: .*paintings/style does not exist.*gcompris_paintings"
    ):
        default_model.prepare(config)
    paintings = tmp_path / "paintings" / "style"
    write_random_images(paintings, 2, 1)
    with pytest.raises(SystemExit, match=r"style_paintings: two images would both be linked as img0.png"):
        default_model.prepare(config)
    for i in range(2):
        (paintings / f"img{i}.png").rename(paintings / f"board{i}.png")
    work = default_model.prepare(config)
    assert sorted(p.name for p in (work / "style").iterdir()) == [
        "img0.png",
        "walls__img0.png",
        "walls__img1.png",
    ]
    names = sorted(p.name for p in (work / "style_paintings").iterdir())
    assert names == ["board0.png", "board1.png", "img0.png", "walls__img0.png", "walls__img1.png"]
    assert all(p.resolve().is_file() for p in (work / "style_paintings").iterdir())
    assert not (work / "style_paintings_details").exists()

    config["data"]["details_painting_data"] = str(tmp_path / "details")
    alone = {**config, "data": {k: v for k, v in config["data"].items() if k != "painting_data"}}
    with pytest.raises(SystemExit, match=r"details_painting_data adds to painting_data.*name painting_data"):
        default_model.prepare(alone)
    with pytest.raises(
        SystemExit, match=r"details_painting_data: .*details/style does not exist.*--activity details"
    ):
        default_model.prepare(config)
    write_random_images(tmp_path / "details" / "style", 1, 3)
    (tmp_path / "details" / "style" / "img0.png").rename(tmp_path / "details" / "style" / "details1.png")
    work = default_model.prepare(config)
    assert sorted(p.name for p in (work / "style_paintings_details").iterdir()) == sorted(
        ["details1.png", *names]
    )
    assert sorted(p.name for p in (work / "style_paintings").iterdir()) == names  # unchanged


def test_train_names_a_missing_stage_content_folder(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config["stage"] = [{"name": "s1", "args": [], "iterations": 1, "content": "content_photos"}]
    with pytest.raises(SystemExit, match=r"stage 's1': content folder .*content_photos does not.*prepare"):
        default_model.train(config, None, None)


def test_a_fork_stage_continues_the_previous_stage_training_state(tmp_path: Path, monkeypatch) -> None:
    """``fork = true``: the stage's run is ``adain train --fork <previous checkpoint>`` with its args; without
    the previous stage's checkpoint (only its model file) it is an error that says so."""
    config = _config(tmp_path)
    work = Path(config["data"]["work"])
    (work / "content").mkdir(parents=True)
    config["stage"] = [
        {"name": "s1", "args": ["--seed", "1"], "iterations": 5},
        {"name": "s2", "args": ["--tv-weight", "100"], "iterations": 9, "fork": True},
    ]
    (work / "s1").mkdir()
    (work / "s1" / "decoder_final.pth").write_bytes(b"model file only")
    with pytest.raises(SystemExit, match=r"stage 's2' forks .*s1/checkpoint.pth does not exist"):
        default_model.train(config, "s2", None)
    calls: list[list[str]] = []
    monkeypatch.setattr(default_model, "run_forwarding_signals", lambda cmd: calls.append(cmd) or 0)
    (work / "s1" / "checkpoint.pth").write_bytes(b"stands in for a checkpoint")
    with pytest.raises(SystemExit) as done:
        default_model.train(config, "s2", None)
    assert done.value.code == 0
    (command,) = calls
    assert command[command.index("train") + 1 :] == [
        "--fork",
        str(work / "s1" / "checkpoint.pth"),
        "--output",
        str(work / "s2"),
        "--iterations",
        "9",
        "--tv-weight",
        "100",
    ]
    # a fork stage with its own style folder: the fork trains on those images (a data ablation)
    config["stage"][1]["style"] = "style_more"
    with pytest.raises(SystemExit, match=r"stage 's2': style folder .*style_more does not exist"):
        default_model.train(config, "s2", None)
    (work / "style_more").mkdir()
    with pytest.raises(SystemExit):
        default_model.train(config, "s2", None)
    assert calls[-1][-2:] == ["--style-dir", str(work / "style_more")]


def _write_log(path: Path, rows: int, start_style: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["iteration,lr,content,style,total,images_per_s"]
    lines += [
        f"{i},0.0001,{3 / i:.4f},{start_style / i:.4f},{(3 + start_style) / i:.4f},1.0"
        for i in range(1, rows + 1)
    ]
    path.write_text("\n".join(lines) + "\n")


def _cells(folder: Path) -> set[str]:
    cells: set[str] = set()
    for path in folder.glob("*.csv"):
        with open(path, newline="") as fh:
            for row in csv.reader(fh):
                cells.update(row)
    return cells


@pytest.mark.slow
def test_report_end_to_end(tmp_path: Path, write_random_images, shared_dir: Path, monkeypatch) -> None:
    """``report`` on 2 × 2 tiny held-out pairs with a random VGG-19 decoder, the real scorer and 2 Gatys
    iterations on 1 pair: every file, the numbers of summary.md against its CSVs, and no silent overwrite."""
    from adain.decoders import build_decoder
    from adain.modelfile import save_model_file

    write_random_images(tmp_path / "paper" / "content", 2, 5)
    write_random_images(tmp_path / "work" / "heldout_style", 2, 6)
    _write_log(tmp_path / "work" / "recon" / "log.csv", 30, 50.0)
    _write_log(tmp_path / "work" / "adain" / "log.csv", 20, 9.0)
    model = save_model_file(
        tmp_path / "m.pth", build_decoder("vgg19_caffe_normalised"), encoder_name="vgg19_caffe_normalised"
    )
    scorer = shared_dir / "tools" / "score_stylization.py"
    config = tmp_path / "c.toml"
    config.write_text(
        f'[data]\npaper = "{tmp_path / "paper"}"\nwork = "{tmp_path / "work"}"\n'
        '[[stage]]\nname = "recon"\nargs = ["--reconstruction"]\niterations = 30\n'
        '[[stage]]\nname = "adain"\nargs = []\niterations = 20\n'
        f'[report]\ncontent_size = 64\nstyle_size = 64\nscorer = "{scorer}"\ngatys_pairs = 1\n'
        "gatys_iterations = 2\nbootstrap_resamples = 200\ncurve_window = 5\ncontext_padding = 8\n"
        f'gatys_cache = "{tmp_path / "gcache"}"\n'
    )
    out = tmp_path / "report"
    argv = ["report", "--config", str(config), "--model", str(model), "--output", str(out)]
    default_model.main(argv)
    for name in (
        "scores.csv", "scores_by_style.csv", "gatys_scores.csv", "colour.csv", "colour_by_style.csv",
        "colour_by_content.csv", "artefacts.csv", "summary.csv", "run.csv", "summary.md", "taps.csv",
        "contact_sheet.png", "contact_sheet_small.jpg", "gatys_vs_adain.png", "training_curves.png",
    ):  # fmt: skip
        assert (out / name).is_file(), name
    assert len(list((out / "adain").glob("*_stylized_*.png"))) == 4
    assert [p.name for p in (out / "gatys").iterdir()] == ["img0_stylized_img0.png"]
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.size == (3 * 128, 3 * 128)
    with Image.open(out / "training_curves.png") as curves:
        assert curves.size == (700, 400)

    scores = list(csv.DictReader(open(out / "scores.csv", newline="")))
    assert len(scores) == 4
    gatys = list(csv.DictReader(open(out / "gatys_scores.csv", newline="")))
    own = next(r for r in scores if (r["content"], r["style"]) == ("img0", "img0"))
    assert (gatys[0]["adain_style_ratio"], gatys[0]["adain_content_ratio"]) == (
        own["style_ratio"], own["content_ratio"]
    )  # fmt: skip
    summary_rows = list(csv.DictReader(open(out / "summary.csv", newline="")))
    style_row = next(r for r in summary_rows if (r["table"], r["metric"]) == ("all pairs", "style_ratio"))
    assert float(style_row["median"]) == pytest.approx(
        statistics.median(float(r["style_ratio"]) for r in scores),
        abs=5e-4 + 1e-9,  # half a 3rd-decimal unit
    )
    assert float(style_row["low"]) <= float(style_row["median"]) <= float(style_row["high"])
    taps = {(r["content"], r["style"]): r for r in csv.DictReader(open(out / "taps.csv", newline=""))}
    assert set(taps) == {(r["content"], r["style"]) for r in scores}
    for r in scores:  # the per-tap split adds up to the scorer's ratio, up to resampling (random noise
        # inputs resized to the output: torch's antialiased bicubic against Pillow's, about 1 %)
        assert float(taps[(r["content"], r["style"])]["style_ratio"]) == pytest.approx(
            float(r["style_ratio"]), rel=3e-2
        )
    tap_rows = {r["metric"] for r in summary_rows if r["table"] == "style ratio by tap"}
    assert {"s2_ratio", "s16_sigma_style", "s8_std_share"} <= tap_rows

    text = (out / "summary.md").read_text()
    run = {r["key"]: r["value"] for r in csv.DictReader(open(out / "run.csv", newline=""))}
    assert run["context_padding"] == "8" and "context padding 8 px" in text
    assert run["precision"] == "fp32"  # pinned: the scores must not depend on the machine's bf16
    assert hashlib.sha256(model.read_bytes()).hexdigest() in text
    assert f"[{style_row['low']}, {style_row['high']}]" in text
    assert "recon adain" in text and "python -m experiments.default_model report" in text
    numbers = re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text)
    assert numbers and set(numbers) <= _cells(out), set(numbers) - _cells(out)

    with pytest.raises(SystemExit, match="--overwrite"):
        default_model.main(argv)

    # a later report (another model) reuses the cached Gatys outputs instead of optimising again
    import adain.gatys

    def no_optimisation(*args, **kwargs):
        raise AssertionError("the cached Gatys output was not reused")

    monkeypatch.setattr(adain.gatys, "optimize_image", no_optimisation)
    again = tmp_path / "report2"
    default_model.main(["report", "--config", str(config), "--model", str(model), "--output", str(again)])
    name = "img0_stylized_img0.png"
    assert (again / "gatys" / name).read_bytes() == (out / "gatys" / name).read_bytes()
    assert (again / "gatys_scores.csv").read_text() == (out / "gatys_scores.csv").read_text()

    # gatys_pairs = 0: no Gatys and none of its files, also when replacing a report that had them
    config.write_text(config.read_text().replace("gatys_pairs = 1", "gatys_pairs = 0"))
    default_model.main([*argv, "--overwrite"])
    assert not any((out / name).exists() for name in ("gatys", "gatys_scores.csv", "gatys_vs_adain.png"))
    text = (out / "summary.md").read_text()
    assert "Not run (`gatys_pairs = 0`)" in text and "gatys subset" not in (out / "summary.csv").read_text()
    artefacts = list(csv.DictReader(open(out / "artefacts.csv", newline="")))
    assert {r["method"] for r in artefacts} == {"adain"} and len(artefacts) == 4
    numbers = re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text)
    assert numbers and set(numbers) <= _cells(out), set(numbers) - _cells(out)


def test_train_picks_the_stage_by_its_own_iterations_and_overrides_only_its_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train --iterations N`` without ``--stage`` runs the first stage unfinished by its own iterations
    (a finished stage whose checkpoint is kept, e.g. one that the next forks from, is not reopened)."""
    import adain.train

    config = _config(tmp_path)
    config["stage"] = [
        {"name": "s1", "args": ["--a"], "iterations": 2},
        {"name": "s2", "args": ["--b"], "iterations": 5, "fork": True},
    ]
    work = tmp_path / "work"
    reached = {"s1": 2, "s2": 3}
    for name in reached:
        (work / name).mkdir(parents=True)
        (work / name / "checkpoint.pth").write_bytes(b"")
    monkeypatch.setattr(
        adain.train, "load_checkpoint", lambda path: {"iteration": reached[Path(path).parent.name]}
    )
    commands: list[list[str]] = []
    monkeypatch.setattr(
        default_model, "run_forwarding_signals", lambda command: commands.append(command) or 0
    )

    def ran(stage: str | None, iterations: int | None) -> list[str]:
        with pytest.raises(SystemExit) as stop:
            default_model.train(config, stage, iterations)
        assert stop.value.code == 0
        command = commands.pop()
        return command[command.index("train") + 1 :]

    assert ran(None, 10) == ["--resume", "--output", str(work / "s2"), "--iterations", "10", "--b"]
    assert ran(None, None) == ["--resume", "--output", str(work / "s2"), "--iterations", "5", "--b"]
    assert ran("s1", 4) == ["--resume", "--output", str(work / "s1"), "--iterations", "4", "--a"]
    reached["s2"] = 5
    default_model.train(config, None, 10)  # every stage at its own iterations: nothing runs
    assert not commands and "--stage NAME --iterations N" in capsys.readouterr().out


def test_train_passes_a_stop_signal_on_to_the_training_process(tmp_path: Path) -> None:
    """SIGTERM to ``default_model train`` reaches ``adain train`` (which checkpoints and exits), instead of
    leaving it running on its own; the handler is restored afterwards."""
    import signal
    import sys
    import threading
    import time

    ready, stopped = tmp_path / "ready", tmp_path / "stopped"
    child = (
        "import pathlib, signal, sys, time\n"
        f"def stop(*_):\n    pathlib.Path({str(stopped)!r}).write_text('x'); sys.exit(3)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"pathlib.Path({str(ready)!r}).write_text('x')\n"
        "time.sleep(30)\n"
    )

    def send_when_ready() -> None:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    sender = threading.Thread(target=send_when_ready)
    sender.start()
    code = default_model.run_forwarding_signals([sys.executable, "-c", child])
    sender.join()
    assert code == 3 and stopped.exists()
    assert signal.getsignal(signal.SIGTERM) == before


def test_snapshot_keeps_the_state_that_a_later_run_needs() -> None:
    """A finished stage's snapshot keeps its resumable checkpoint when the stage is the last (a later
    session may raise its iterations) or the next stage forks from it; otherwise only its model file."""
    stages = [{"name": "a"}, {"name": "b"}, {"name": "c", "fork": True}, {"name": "d"}]
    assert [default_model.keeps_training_state(stages, i) for i in range(4)] == [False, True, False, True]
    assert default_model.keeps_training_state([{"name": "only"}], 0)


@pytest.mark.slow
def test_staged_training_snapshots_and_resumes_elsewhere(tmp_path: Path, write_random_images) -> None:
    """``train`` runs the stages in order (the second from the first's decoder); ``snapshot`` keeps a finished
    stage as its model file only and an unfinished one as its checkpoint; on a machine with an empty work
    folder ``train`` seeds both from the snapshot, skips the finished stage and resumes the other."""
    import shutil as sh

    import torch

    from adain.modelfile import read_model_file
    from adain.train import load_checkpoint

    tiny = ["--image-size", "40", "--crop-size", "32", "--batch-size", "2", "--encoder", "mobilenet_v2"]
    tiny += ["--random-encoder", "--device", "cpu", "--no-progress", "--samples", "0"]
    config = _config(tmp_path)
    config["stage"] = [
        {"name": "s1", "args": [*tiny, "--reconstruction"], "iterations": 1},
        {"name": "s2", "args": tiny, "iterations": 3, "content": "content_photos"},
    ]
    work, snapshots = tmp_path / "work", tmp_path / "snapshots"
    write_random_images(work / "content", 4, 0)
    write_random_images(work / "content_photos", 5, 2)
    write_random_images(work / "style", 4, 1)

    def run(stage: str | None = None, iterations: int | None = None) -> None:
        with pytest.raises(SystemExit) as stop:
            default_model.train(config, stage, iterations)
        assert stop.value.code == 0

    run()  # s1
    run("s2", 1)  # s2 starts from s1's decoder, stops early
    s1_decoder = read_model_file(work / "s1" / "decoder_final.pth").decoder_state
    s2_config = load_checkpoint(work / "s2" / "checkpoint.pth")["config"]
    assert s2_config["content_dir"] == str(work / "content_photos")
    default_model.snapshot(config)
    assert sorted(p.name for p in (snapshots / "s1").iterdir()) == ["decoder_final.pth", "log.csv"]
    assert sorted(p.name for p in (snapshots / "s2").iterdir()) == ["checkpoint.pth", "log.csv"]
    assert load_checkpoint(snapshots / "s2" / "checkpoint.pth")["config"]["init_decoder"].endswith(
        "checkpoint.pth"
    )

    sh.rmtree(work / "s1")
    sh.rmtree(work / "s2")
    run()  # fresh machine: s1 is finished (model file), s2 resumes to its 3 iterations
    assert load_checkpoint(work / "s2" / "checkpoint.pth")["iteration"] == 3
    assert (work / "s2" / "decoder_final.pth").is_file()
    default_model.snapshot(config)  # the last stage, finished, keeps its state: a later run may extend it
    assert sorted(p.name for p in (snapshots / "s2").iterdir()) == ["checkpoint.pth", "log.csv"]
    assert load_checkpoint(snapshots / "s2" / "checkpoint.pth")["iteration"] == 3
    assert not (work / "s1" / "checkpoint.pth").exists()
    seeded = read_model_file(work / "s1" / "decoder_final.pth").decoder_state
    assert all(torch.equal(seeded[k], v) for k, v in s1_decoder.items())
    default_model.train(config, None, None)  # every stage done: returns without training

    from experiments.default_model_report import _trained_iterations

    assert _trained_iterations(work / "s2" / "checkpoint.pth") == "3"  # what report's run.csv says
    assert _trained_iterations(work / "s1" / "decoder_final.pth") == "1"

    # a resume passes the stage's options: a run option (the weight average) takes effect ...
    config["stage"][1].update(args=[*tiny, "--ema-decay", "0.9"], iterations=4)
    run()
    assert load_checkpoint(work / "s2" / "checkpoint.pth")["config"]["ema_decay"] == 0.9
    assert (work / "s2" / "decoder_ema.pth").is_file()
    # ... and an edited training option is refused, not silently ignored
    config["stage"][1].update(args=[*tiny, "--seed", "5"], iterations=5)
    with pytest.raises(SystemExit) as refused:
        default_model.train(config, None, None)
    assert refused.value.code == 2


def test_report_stylizes_at_a_pinned_precision() -> None:
    """The report's outputs are made in the configured precision (fp32 by default), never ``auto``:
    scores taken on an AMX machine (where auto is bf16) stay comparable with everyone else's."""
    from experiments.default_model_report import REPORT_DEFAULTS, stylize_command

    def precision_of(rep: dict) -> str:
        command = stylize_command(Path("m.pth"), Path("c"), Path("s"), Path("o"), rep)
        return command[command.index("--precision") + 1]

    assert precision_of(REPORT_DEFAULTS) == "fp32"
    assert precision_of({**REPORT_DEFAULTS, "precision": "bf16"}) == "bf16"


def test_curve_positions_shift_fresh_stages_and_keep_forks() -> None:
    """A fresh stage (log from 1) starts where the previous ended; a fork continues the counter as it is."""
    from experiments.default_model_report import curve_positions

    fresh = {"name": "a"}
    positions = curve_positions(
        [(fresh, [1, 2, 3]), ({"name": "b"}, [1, 2]), ({"name": "c", "fork": True}, [6, 7])]
    )
    assert positions == [[1.0, 2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
    # a fork as the first stage with a log has no parent on the axis: it keeps its own numbers too
    assert curve_positions([({"name": "f", "fork": True}, [10, 11])]) == [[10.0, 11.0]]
