"""Resumable run folders: the experiment's fingerprint, one record per finished output, and the sittings.

A run of :mod:`experiments.optimize` (and so of :mod:`experiments.compare`) can take many hours; this
module lets it run over several sittings and continue where it stopped (``--resume``), giving the files
of an uninterrupted run. Besides its aggregate files a run folder holds::

    settings.json                   the effective experiment (everything the outputs depend on), written
                                    when the run starts; a resumed run must have the same one
    records/<job>/<output>.json     one per finished optimisation (or decoder output): its metrics row and
                                    loss history, written atomically AFTER its image, so an output killed
                                    midway has no record and is redone
    sittings.json                   one entry per sitting: start (UTC), seconds, outputs made, git commit,
                                    whether it was interrupted (a SIGKILL leaves no entry)

* :func:`prepare` checks the folder against ``--resume``/``--force`` and writes ``settings.json``.
* :func:`read_record`/:func:`write_record` read and write the per-output records.
* :func:`add_sitting`/:func:`update_last_sitting` keep ``sittings.json``; :func:`sittings_seconds` sums it.
* :func:`sigterm_as_interrupt` turns SIGTERM into ``KeyboardInterrupt`` for a command line's ``main``;
  :class:`RunInterrupted` is what a run raises then, naming the folder and how to continue.
* :func:`snapshot` copies what a resume needs (the experiment, the sittings, the records and their
  images) to a folder that can be committed; :func:`seed_from_snapshot` starts a missing run folder from
  it on another machine, so a run of many CPU hours can go on across sessions.
"""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from experiments.runs import ConfigError, jsonable, write_json

__all__ = [
    "IMAGES",
    "RECORDS",
    "SETTINGS",
    "SITTINGS",
    "RunFolderError",
    "RunInterrupted",
    "add_sitting",
    "differences",
    "prepare",
    "read_record",
    "read_sittings",
    "seed_from_snapshot",
    "sigterm_as_interrupt",
    "sittings_seconds",
    "snapshot",
    "update_last_sitting",
    "write_record",
]

SETTINGS = "settings.json"
SITTINGS = "sittings.json"
RECORDS = "records"
IMAGES = "images"  # images/<job>/<output>.png, beside records/<job>/<output>.json (experiments.optimize)
CONFIG = "config.toml"


class RunFolderError(ConfigError):
    """A run folder cannot be used: it exists without ``--resume``/``--force``, it is not a run folder,
    its saved experiment differs from the current config, or a record in it is unreadable."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM; the outputs finished before it are recorded in ``folder``."""

    def __init__(self, folder: Path, done: int, total: int) -> None:
        self.folder, self.done, self.total = Path(folder), done, total
        super().__init__(
            f"interrupted: {done} of {total} outputs are recorded in {folder}; run the same command with "
            "--resume to continue from there"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples as lists, Paths as str)."""
    return json.loads(json.dumps(jsonable(value)))


def differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """The dotted keys where two JSON-like values differ (``transfer.iterations``), each with both values;
    lists and scalars are compared whole."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current)):
            name = f"{prefix}.{key}" if prefix else key
            if key not in saved:
                out.append(f"{name} (not in the saved run; now {current[key]!r})")
            elif key not in current:
                out.append(f"{name} (saved {saved[key]!r}; not in the current config)")
            else:
                out += differences(saved[key], current[key], name)
        return out
    return [] if saved == current else [f"{prefix or '(all)'} (saved {saved!r}, now {current!r})"]


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path}: cannot read the {what}: {exc}") from None


def prepare(folder: Path, settings: Mapping[str, Any], *, resume: bool = False, force: bool = False) -> bool:
    """Make ``folder`` ready for a run of the experiment ``settings``; returns True when it continues an
    earlier run (``resume`` and the folder holds one), False when the run starts afresh.

    A missing or empty folder starts a run (with or without ``resume``). A folder with files is an error
    unless ``resume`` (continue it: its ``settings.json`` must equal ``settings``, else an error naming
    the folder and the differing keys) or ``force`` (delete it and start over; only a run folder, one
    holding ``config.toml`` or ``settings.json``, is deleted).

    Raises:
        RunFolderError: the message names the folder and the problem.
    """
    folder = Path(folder)
    if resume and force:
        raise RunFolderError(
            f"{folder}: --resume (continue the run) and --force (start over) exclude each other"
        )
    current = _plain(settings)
    continued = False
    if folder.exists() and any(folder.iterdir()):
        is_run = (folder / "config.toml").is_file() or (folder / SETTINGS).is_file()
        if force:
            if not is_run:
                raise RunFolderError(
                    f"{folder}: not a run folder (no config.toml or {SETTINGS}); --force deletes only run "
                    "folders: choose another output folder"
                )
            shutil.rmtree(folder)
        elif not resume:
            raise RunFolderError(
                f"{folder} exists and is not empty: use --resume to continue that run (same config), "
                "--force to delete it and start over, or another output folder"
            )
        elif not (folder / SETTINGS).is_file():
            raise RunFolderError(
                f"{folder}: cannot resume: it has no {SETTINGS} (not a run folder, or one made before runs "
                "could be resumed); use --force to start over or another output folder"
            )
        else:
            diff = differences(_read_json(folder / SETTINGS, "saved experiment settings"), current)
            if diff:
                raise RunFolderError(
                    f"{folder}: cannot resume: the run there is a different experiment; its {SETTINGS} "
                    f"differs from the current config in: {'; '.join(diff)}. Resume with the config (and "
                    "--quick/--seed/--size/--iterations) it was started with, or use --force to start over"
                )
            continued = True
    folder.mkdir(parents=True, exist_ok=True)
    if not continued:
        write_json(folder / SETTINGS, current)
    return continued


def _record_path(folder: Path, job: str, output: str) -> Path:
    return Path(folder) / RECORDS / job / f"{output}.json"


def read_record(folder: Path, job: str, output: str, image: Path) -> dict[str, Any] | None:
    """The record of ``job``'s ``output`` if that output is complete (its record and ``image`` exist),
    else None (the output is to be made). Raises :class:`RunFolderError` for an unreadable record."""
    path = _record_path(folder, job, output)
    if not path.is_file() or not image.is_file():
        return None
    record = _read_json(path, "record of a finished output")
    if not isinstance(record, dict) or "row" not in record:
        raise RunFolderError(f"{path}: not a record of a finished output (no 'row'); delete it to redo it")
    return record


def write_record(folder: Path, job: str, output: str, record: Mapping[str, Any]) -> Path:
    """Write ``job``'s ``output`` record atomically; call it after the output's image is saved."""
    path = _record_path(folder, job, output)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, dict(record))


def read_sittings(folder: Path) -> list[dict[str, Any]]:
    """The entries of ``folder/sittings.json`` (empty when there is none)."""
    path = Path(folder) / SITTINGS
    if not path.is_file():
        return []
    sittings = _read_json(path, "record of sittings")
    if not isinstance(sittings, list):
        raise RunFolderError(f"{path}: not a list of sittings")
    return sittings


def add_sitting(folder: Path, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Append ``entry`` to ``folder/sittings.json`` (atomically); returns every sitting."""
    sittings = [*read_sittings(folder), dict(entry)]
    write_json(Path(folder) / SITTINGS, sittings)
    return sittings


def update_last_sitting(folder: Path, **fields: Any) -> list[dict[str, Any]]:
    """Add ``fields`` to the last sitting of ``folder/sittings.json``; returns every sitting."""
    sittings = read_sittings(folder)
    if not sittings:
        raise RunFolderError(f"{Path(folder) / SITTINGS}: no sitting to update")
    sittings[-1].update(fields)
    write_json(Path(folder) / SITTINGS, sittings)
    return sittings


def sittings_seconds(sittings: list[dict[str, Any]]) -> float:
    """The wall time of a run over all its sittings: each sitting's ``seconds`` (optimisation) plus its
    ``evaluation_s`` (cross-evaluation, when :mod:`experiments.compare` ran it)."""
    return sum(float(s.get("seconds", 0.0)) + float(s.get("evaluation_s", 0.0)) for s in sittings)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does, so a run stopped either way
    keeps its finished outputs recorded; the previous handler is restored on exit. For command lines'
    ``main`` (main thread) only."""
    previous = signal.getsignal(signal.SIGTERM)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def snapshot(folder: Path, target: Path) -> int:
    """Copy what resuming ``folder`` needs into ``target`` (replacing an earlier snapshot there); returns
    the number of finished outputs kept.

    Kept: ``settings.json``, ``config.toml``, ``sittings.json``, every record and the image of each record
    (an image without a record is an output killed midway, redone on resume, and left out). The aggregate
    files and figures are not kept: a resume rebuilds them from the records. The copy is written beside
    ``target`` and renamed into place, so an interrupted snapshot leaves the previous one whole.

    Raises:
        RunFolderError: ``folder`` is not a resumable run folder (no ``settings.json``).
    """
    folder, target = Path(folder), Path(target)
    if not (folder / SETTINGS).is_file():
        raise RunFolderError(f"{folder}: nothing to snapshot: no {SETTINGS} (not a resumable run folder)")
    staging = target.with_name(target.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name in (SETTINGS, CONFIG, SITTINGS):
        if (folder / name).is_file():
            shutil.copy2(folder / name, staging / name)
    kept = 0
    for record in sorted((folder / RECORDS).glob("*/*.json")):
        job, output = record.parent.name, record.stem
        image = folder / IMAGES / job / f"{output}.png"
        if not image.is_file():
            continue
        for source, dest in (
            (record, staging / RECORDS / job / record.name),
            (image, staging / IMAGES / job / image.name),
        ):
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
        kept += 1
    old = target.with_name(target.name + ".old")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    if old.exists():
        shutil.rmtree(old)
    return kept


def seed_from_snapshot(source: Path, folder: Path) -> bool:
    """Start the run folder ``folder`` from the snapshot ``source`` (made by :func:`snapshot`) when
    ``folder`` is missing or empty and ``source`` holds one; returns whether it did. A run folder that
    already has files is never touched (it is newer than, or the same as, the snapshot)."""
    source, folder = Path(source), Path(folder)
    if not (source / SETTINGS).is_file() or (folder.exists() and any(folder.iterdir())):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, folder, dirs_exist_ok=True)
    return True
