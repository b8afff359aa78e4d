"""The shipped default model: its data split, its staged training, and its report on held-out pairs.

    python -m experiments.default_model prepare    # split folders (symbolic links) under [data] work
    python -m experiments.default_model train [--iterations N] [--stage NAME]   # runs or resumes a stage
    python -m experiments.default_model report --model FILE [--output DIR] [--overwrite]
    python -m experiments.default_model snapshot   # copy the runs' checkpoints into the repository
    python -m experiments.default_model bound --model FILE [--output DIR] [--overwrite]
    python -m experiments.default_model ship --model FILE --report DIR [--output FILE] [--overwrite]

Everything is read from ``experiments/configs/default_model.toml`` (``--config`` for another file):

* ``prepare``: ``WORK/content`` links every training content image (the Debian wallpapers of
  ``python -m experiments.training_data``); ``WORK/style`` links the paper's styles that are not held out
  plus the wallpapers of ``extra_style_folders``; ``WORK/heldout_style`` links the held-out styles.
  The paper's content photos are never trained on: they are the held-out contents. When ``[data]``
  names ``photo_data`` (a content-only set of ``python -m experiments.training_data``, e.g. OpenCV's
  example photos), ``WORK/content_photos`` links the wallpapers and those photos; a stage trains on it
  with ``content = "content_photos"`` (the default is ``content``). When ``[data]`` names ``painting_data``
  (``python -m experiments.gcompris_paintings``), ``WORK/style_paintings`` links the training styles and
  those paintings; a stage trains on it with ``style = "style_paintings"`` (a fork stage then forks onto
  them: ``adain train --fork … --style-dir``). ``details_painting_data`` (``python -m
  experiments.gcompris_paintings --activity details``) adds ``WORK/style_paintings_details``: those and
  the "details" activity's Van Gogh paintings.
* ``train``: one ``adain train`` run per ``[[stage]]`` into ``WORK/<stage name>``; a stage after the first
  starts from the previous stage's checkpoint (``--init-decoder``), or with ``fork = true`` continues its
  whole training state with the stage's ``args`` changed (``adain train --fork``). A run that has a
  checkpoint is resumed exactly (``--resume``, with the stage's options, which must agree with it except
  run options such as ``--ema-decay``), so the command can be repeated until ``iterations``.
* ``snapshot``: copies each stage's ``checkpoint.pth`` and ``log.csv`` into ``[data] snapshots`` (in the
  repository, outside the installed package), so a schedule longer than one sitting continues on another
  machine: ``train`` seeds a stage's run folder from its snapshot when the folder has no checkpoint. A
  finished stage is kept as its model file only, except the last stage and one that the next stage forks
  from, whose resumable state a later run needs (raise the last stage's ``iterations`` to extend it).
* ``report``: stylizes every held-out content × held-out style at ``content_size``, scores the outputs
  with ``../shared/tools/score_stylization.py``, runs Gatys optimisation on a subset of the same pairs,
  checks colour statistics and artefacts, and writes CSVs, sheets, training curves and ``summary.md``
  (:mod:`experiments.default_model_report`; options in ``[report]``; ``--overwrite`` to replace a report).
* ``bound``: the model against the perfect decoder (the AdaIN target inverted by optimisation) on a few
  held-out pairs, both scored by the same scorer (:mod:`experiments.default_model_bound`; options in
  ``[bound]``; default output ``runs/default_model_bound``).
* ``ship``: writes the model (float16) as the package's ``adain/models/default.pth`` only if its report
  (``--report``, of the same file) meets ``[ship]``'s goal (:mod:`experiments.default_model_ship`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "experiments" / "configs" / "default_model.toml"


def load_config(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        config = tomllib.load(fh)
    for key in ("data", "stage", "report"):
        if key not in config:
            raise SystemExit(f"{path}: missing [{key}]")
    return config


def _resolve(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (REPO / path).resolve()


def _link_all(files: list[tuple[Path, Path]], folder: Path) -> int:
    """Link each ``(root, file)`` into ``folder`` as its path below ``root`` joined by ``__`` (unique)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for root, f in files:
        link = folder / "__".join(f.relative_to(root).parts)
        if link.is_symlink():
            raise SystemExit(
                f"{folder}: two images would both be linked as {link.name}: {link.resolve()} and {f}"
            )
        link.symlink_to(f)
    return len(files)


def prepare(config: dict[str, Any]) -> Path:
    """Build the split folders; returns the work folder."""
    from adain.io import list_images

    data = config["data"]
    if "details_painting_data" in data and "painting_data" not in data:
        raise SystemExit(
            "[data] details_painting_data adds to painting_data's paintings: name painting_data too "
            "(python -m experiments.gcompris_paintings makes it)"
        )
    training, paper, work = (_resolve(data[k]) for k in ("training_data", "paper", "work"))
    held = set(data["held_out_styles"])
    styles = list_images(paper / "style")
    missing = held - {p.stem for p in styles}
    if missing:
        raise SystemExit(f"held-out styles not found in {paper / 'style'}: {sorted(missing)}")
    train_styles = [(paper / "style", p) for p in styles if p.stem not in held]
    walls = training / "content"
    extra = [(walls, p) for folder in data["extra_style_folders"] for p in list_images(walls / folder)]
    wallpapers = [(walls, p) for p in list_images(walls)]
    n_content = _link_all(wallpapers, work / "content")
    photo_note = ""
    if "photo_data" in data:
        photos = _resolve(data["photo_data"]) / "content"
        if not photos.is_dir():
            from experiments.training_data import PHOTO_PACKAGES

            specs = " ".join(f'"{spec}"' for spec in PHOTO_PACKAGES)
            raise SystemExit(
                f"[data] photo_data: {photos} does not exist; make it with "
                f"python -m experiments.training_data --output {data['photo_data']} --packages {specs} "
                "--styles none"
            )
        n_photos = _link_all(wallpapers + [(photos, p) for p in list_images(photos)], work / "content_photos")
        photo_note = f", {n_photos - n_content} photos (+ the wallpapers) in content_photos"
    n_style = _link_all(train_styles + extra, work / "style")
    painting_note = ""
    if "painting_data" in data:
        paintings = _resolve(data["painting_data"]) / "style"
        if not paintings.is_dir():
            raise SystemExit(
                f"[data] painting_data: {paintings} does not exist; make it with "
                f"python -m experiments.gcompris_paintings --output {data['painting_data']}"
            )
        more = [(paintings, p) for p in list_images(paintings)]
        n_more = _link_all(train_styles + extra + more, work / "style_paintings") - n_style
        painting_note = f", {n_more} paintings (+ the training styles) in style_paintings"
        if "details_painting_data" in data:
            details = _resolve(data["details_painting_data"]) / "style"
            if not details.is_dir():
                raise SystemExit(
                    f"[data] details_painting_data: {details} does not exist; make it with "
                    "python -m experiments.gcompris_paintings --activity details --output "
                    f"{data['details_painting_data']}"
                )
            both = more + [(details, p) for p in list_images(details)]
            n_both = _link_all(train_styles + extra + both, work / "style_paintings_details") - n_style
            painting_note += f", {n_both} paintings (+ the training styles) in style_paintings_details"
    n_held = _link_all([(paper / "style", p) for p in styles if p.stem in held], work / "heldout_style")
    print(
        f"{work}: {n_content} contents, {n_style} training styles ({len(train_styles)} paintings + "
        f"{len(extra)} wallpapers), {n_held} held-out styles{photo_note}{painting_note}; "
        f"held-out contents: {paper / 'content'}"
    )
    return work


def _finished_model(folder: Path) -> Path:
    from adain.train import FINAL_MODEL_NAME

    return folder / FINAL_MODEL_NAME


def run_forwarding_signals(command: list[str]) -> int:
    """Run ``command`` and return its exit code; a SIGTERM or SIGINT that this process receives meanwhile
    is passed on to it (``adain train`` checkpoints on either and exits), so stopping this process stops
    the training instead of leaving it running on its own. The previous handlers are restored."""
    import signal

    child = subprocess.Popen(command)

    def forward(signum: int, frame: object) -> None:
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def train(config: dict[str, Any], stage_name: str | None, iterations: int | None) -> None:
    """Run or resume one stage (the first unfinished one, or ``stage_name``).

    A stage is finished when its checkpoint has reached the stage's iterations, or when it has only its
    final model file (``decoder_final.pth``, what :func:`snapshot` keeps of a finished stage). The next
    stage starts from the previous stage's checkpoint, or from that model file (``--init-decoder``).
    ``iterations`` overrides the target of the stage that runs only: which stage that is, is decided by
    each stage's own ``iterations`` (to extend a finished stage, name it with ``stage_name``).
    """
    from adain.train import CHECKPOINT_NAME, load_checkpoint

    work = _resolve(config["data"]["work"])
    stages = config["stage"]
    names = [s["name"] for s in stages]
    if stage_name is not None and stage_name not in names:
        raise SystemExit(f"no stage {stage_name!r}; stages: {', '.join(names)}")
    for i, stage in enumerate(stages):
        if stage_name is not None and stage["name"] != stage_name:
            continue
        out = work / stage["name"]
        own_total = int(stage["iterations"])
        total = iterations or own_total
        checkpoint, final = out / CHECKPOINT_NAME, _finished_model(out)
        snapshot = _resolve(config["data"]["snapshots"]) / stage["name"]
        if not checkpoint.is_file() and not final.is_file():
            seeded = [
                name for name in (CHECKPOINT_NAME, final.name, "log.csv") if (snapshot / name).is_file()
            ]
            if seeded and seeded != ["log.csv"]:
                out.mkdir(parents=True, exist_ok=True)
                for name in seeded:
                    shutil.copy2(snapshot / name, out / name)
                print(f"seeded {out} from the snapshot {snapshot} ({', '.join(seeded)})")
        if checkpoint.is_file():
            if stage_name is None and load_checkpoint(checkpoint)["iteration"] >= own_total:
                continue
            # the stage's options again: they must agree with the checkpoint (an edited stage is refused,
            # not ignored), and the run options among them (e.g. --ema-decay, --lr) take effect
            command = ["--resume", "--output", str(out), "--iterations", str(total), *stage["args"]]
        elif final.is_file() and stage_name is None:
            continue  # a finished stage kept as its model file
        else:
            content, style = work / stage.get("content", "content"), work / stage.get("style", "style")
            forks = i > 0 and stage.get("fork", False)  # a fork keeps the checkpoint's folders unless named
            for kind, folder in (("content", content), ("style", style)):
                if (kind in stage or not forks) and not folder.is_dir():
                    raise SystemExit(
                        f"stage {stage['name']!r}: {kind} folder {folder} does not exist; run python -m "
                        "experiments.default_model prepare (photo_data and painting_data made first; see the "
                        "config)"
                    )
            command = [
                "--content-dir",
                str(content),
                "--style-dir",
                str(style),
                "--output",
                str(out),
                "--iterations",
                str(total),
                *stage["args"],
            ]
            if forks:
                command = _fork_command(work / stages[i - 1]["name"], out, total, stage)
                if "content" in stage:
                    command += ["--content-dir", str(content)]
                if "style" in stage:
                    command += ["--style-dir", str(style)]
            elif i > 0:
                previous = work / stages[i - 1]["name"]
                start = previous / CHECKPOINT_NAME
                if not start.is_file():
                    start = _finished_model(previous)
                command += ["--init-decoder", str(start)]
        print("adain train " + " ".join(command), flush=True)
        sys.exit(run_forwarding_signals([sys.executable, "-m", "adain", "train", *command]))
    print(
        "every stage has reached its iterations (to train one further: raise its iterations in the config, "
        "or --stage NAME --iterations N)"
    )


def _fork_command(previous: Path, out: Path, total: int, stage: Mapping[str, Any]) -> list[str]:
    """``adain train --fork``: a stage with ``fork = true`` continues the previous stage's whole training
    state (decoder, Adam, schedule, data order) with its ``args`` changed (e.g. ``--tv-weight``)."""
    from adain.train import CHECKPOINT_NAME

    start = previous / CHECKPOINT_NAME
    if not start.is_file():
        raise SystemExit(
            f"stage {stage['name']!r} forks the previous stage's training state, but {start} does not "
            "exist (a finished stage's snapshot keeps only its model file); restore that checkpoint first"
        )
    return ["--fork", str(start), "--output", str(out), "--iterations", str(total), *stage["args"]]


def keeps_training_state(stages: list[Mapping[str, Any]], index: int) -> bool:
    """Whether the snapshot of stage ``index``, once finished, keeps its resumable checkpoint rather than
    only its model file: the last stage does (a later session may extend it by raising its
    ``iterations``), and so does a stage that the next one forks from (``fork = true`` continues the whole
    training state: decoder, Adam, schedule, data order)."""
    return index == len(stages) - 1 or bool(stages[index + 1].get("fork", False))


def snapshot(config: dict[str, Any]) -> None:
    """Copy every stage's state and log into the repository's snapshot folder: a finished stage (its
    checkpoint at the stage's iterations) as its final model file only (no optimiser state: a third of the
    size), unless :func:`keeps_training_state` says a later run needs its state; an unfinished one as its
    resumable checkpoint."""
    from adain.errors import CheckpointError
    from adain.torchfiles import atomic_torch_save, safe_torch_load
    from adain.train import CHECKPOINT_NAME, load_checkpoint

    work, target = _resolve(config["data"]["work"]), _resolve(config["data"]["snapshots"])
    stages = config["stage"]
    for i, stage in enumerate(stages):
        source, folder = work / stage["name"], target / stage["name"]
        checkpoint, final = source / CHECKPOINT_NAME, _finished_model(source)
        if not checkpoint.is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        finished = load_checkpoint(checkpoint)["iteration"] >= int(stage["iterations"])
        if finished and final.is_file() and not keeps_training_state(stages, i):
            keep, drop = final, folder / CHECKPOINT_NAME
        else:
            keep, drop = checkpoint, folder / final.name
        state = safe_torch_load(keep, "checkpoint", CheckpointError)
        atomic_torch_save(state, folder / keep.name)
        drop.unlink(missing_ok=True)
        shutil.copy2(source / "log.csv", folder / "log.csv")
        print(f"{keep} → {folder / keep.name}")


def report(config: dict[str, Any], model: Path, output: Path, *, overwrite: bool, command: str) -> None:
    """Held-out stylizations, scores, the Gatys comparison, colour and artefact checks, sheets, curves and
    ``summary.md`` (see :mod:`experiments.default_model_report`)."""
    from experiments.default_model_report import run_report

    summary = run_report(config, model, output, overwrite=overwrite, command=command)
    print(f"wrote {summary.parent}: summary.md and its CSVs, sheets, curves")


def bound(config: dict[str, Any], model: Path, output: Path, *, overwrite: bool, command: str) -> None:
    """The model against the perfect decoder on a few held-out pairs (see
    :mod:`experiments.default_model_bound`)."""
    from experiments.default_model_bound import run_bound

    summary = run_bound(config, model, output, overwrite=overwrite, command=command)
    print(f"wrote {summary.parent}: summary.md, bound_scores.csv, bound.png")


def ship(
    config: dict[str, Any], model: Path, report_dir: Path, output: Path | None, *, overwrite: bool
) -> None:
    """Write ``model`` as the package's default model (float16) if its report meets ``[ship]``'s goal (see
    :mod:`experiments.default_model_ship`)."""
    from adain.errors import AdainError
    from experiments.default_model_ship import ShipRefused, ship_model

    if "ship" not in config:
        raise SystemExit("the config has no [ship] section (style_ratio_max, content_ratio_max)")
    target = output or REPO / "adain" / "models" / "default.pth"
    try:
        shipped = ship_model(model, report_dir, target, config["ship"], overwrite=overwrite)
    except (ShipRefused, AdainError) as e:  # AdainError: an unreadable model file, named in the message
        raise SystemExit(f"ship: {e}") from None
    print(
        f"wrote {target} (float16) from {model}: median style ratio {shipped['style_ratio_median']:.3f}, "
        f"content ratio {shipped['content_ratio_median']:.3f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("prepare", "train", "report", "snapshot", "bound", "ship"))
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--stage", default=None)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None, help="default: runs/default_model_<command>")
    parser.add_argument("--report", type=Path, default=None, help="ship: the model's report folder")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier report in --output (ship: --output FILE)"
    )
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.command == "prepare":
        prepare(config)
    elif args.command == "train":
        train(config, args.stage, args.iterations)
    elif args.command == "snapshot":
        snapshot(config)
    elif args.command == "ship":
        if args.model is None or args.report is None:
            raise SystemExit("ship needs --model FILE and --report DIR")
        ship(config, args.model, args.report, args.output, overwrite=args.overwrite)
    else:
        if args.model is None:
            raise SystemExit(f"{args.command} needs --model FILE")
        from adain.errors import AdainError

        command = " ".join(["python -m experiments.default_model", *(sys.argv[1:] if argv is None else argv)])
        output = args.output or Path(f"runs/default_model_{args.command}")
        try:
            if args.command == "report":
                report(config, args.model, output, overwrite=args.overwrite, command=command)
            else:
                bound(config, args.model, output, overwrite=args.overwrite, command=command)
        except AdainError as e:
            raise SystemExit(f"{args.command}: {e}") from None


if __name__ == "__main__":
    main()
