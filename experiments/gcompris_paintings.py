"""Famous paintings as extra training styles, reassembled from GCompris's jigsaw puzzle.

    python -m experiments.gcompris_paintings [--output ~/.cache/adain-mmd/painting-data]

Debian's ``gcompris-qt-data`` (GPL-3+; the images are the WebMuseum's reproductions of public-domain
paintings: Renoir, Van Gogh, Kandinsky, Degas, Cassatt, Bazille, Dürer, Bruegel, Arcimboldo, Hokusai,
Hiroshige …) ships them only as jigsaw pieces in the Qt resource bundle
``usr/share/gcompris-qt/rcc/paintings.rcc``. Each puzzle board (``resource/board/boardN_0.qml``) names its
pieces with their centres as fractions of the board's width and height; :func:`assemble_board` pastes the
pieces (RGBA, the tabs overlapping) at those centres and cuts the painting out of the board. A board whose
pieces leave more than a few seam pixels uncovered is refused.

Writes ``OUTPUT/style/<board>_<title>.png`` (RGB, about 600 × 450 px) and ``OUTPUT/manifest.json`` (the
package version, the bundle's sha256 and, per painting, its board, title, pieces and size), which is what
``adain train --style-dir OUTPUT/style`` reads. The images never go into the repository.

    python -m experiments.gcompris_paintings --activity details   # ~/.cache/adain-mmd/painting-data-details

The "details" activity (``usr/share/gcompris-qt/rcc/details.rcc``) shows whole pictures, each board's
``SHAPE_BACKGROUND_IMAGE``: eight Van Gogh paintings (about 400–670 × 500 px) beside photographs of
monuments. :func:`detail_paintings` keeps the boards whose title names a painter of
:data:`DETAIL_PAINTERS` and writes them as ``OUTPUT/style/details<N>_<title>.png``, with the same
manifest (no pieces: the picture is whole).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from experiments.qt_resources import read_rcc
from experiments.training_data import fetch_packages, package_version

__all__ = [
    "ACTIVITIES",
    "Board",
    "PuzzleError",
    "assemble_board",
    "detail_paintings",
    "main",
    "paintings",
    "parse_board",
    "parse_detail_board",
]

PACKAGE = "gcompris-qt-data"
BUNDLE = "usr/share/gcompris-qt/rcc/paintings.rcc"
RESOURCES = "gcompris/src/activities/paintings/resource/"
DEFAULT_OUTPUT = Path("~/.cache/adain-mmd/painting-data")
DETAILS_BUNDLE = "usr/share/gcompris-qt/rcc/details.rcc"
DETAILS_RESOURCES = "gcompris/src/activities/details/resource/"
#: the "details" boards kept: those whose title starts with one of these names and a comma (the others
#: show monuments: photographs, not paintings)
DETAIL_PAINTERS = ("Vincent van Gogh",)
#: activity → (bundle in the package, default output folder)
ACTIVITIES = {
    "paintings": (BUNDLE, DEFAULT_OUTPUT),
    "details": (DETAILS_BUNDLE, Path("~/.cache/adain-mmd/painting-data-details")),
}
#: px cut from each side of the pieces' bounding box (their outer edges are ragged)
MARGIN = 4
#: the largest share of the painting that may be left uncovered (and filled from neighbours)
MAX_HOLES = 0.002

_TITLE = re.compile(r'instruction:\s*qsTr\("([^"]*)"\)')
_SIZE = re.compile(r'"width"\s*:\s*(\d+)\s*,\s*"height"\s*:\s*(\d+)')
_PIECE = re.compile(r'"pixmapfile"\s*:\s*"([^"]+)"\s*,\s*"x"\s*:\s*"([\d.]+)"\s*,\s*"y"\s*:\s*"([\d.]+)"')
_BACKGROUND = re.compile(r'"pixmapfile"\s*:\s*"([^"]+)"\s*,\s*"type"\s*:\s*"SHAPE_BACKGROUND_IMAGE"')


class PuzzleError(ValueError):
    """A board that cannot be read or reassembled."""


@dataclass(frozen=True)
class Board:
    """One puzzle: ``title``, the board's ``width`` × ``height`` in px, and its ``pieces`` as
    ``(image path relative to the resource folder, centre x, centre y)``, centres as fractions of the
    board's width and height."""

    title: str
    width: int
    height: int
    pieces: tuple[tuple[str, float, float], ...]


def parse_board(qml: str) -> Board:
    """The :class:`Board` of a ``boardN_0.qml`` file's text.

    Raises:
        PuzzleError: no board size or no pieces.
    """
    size = _SIZE.search(qml)
    pieces = tuple((path, float(x), float(y)) for path, x, y in _PIECE.findall(qml))
    if size is None or not pieces:
        raise PuzzleError("not a paintings board: no background size or no pieces")
    title = _TITLE.search(qml)
    return Board(title.group(1) if title else "", int(size.group(1)), int(size.group(2)), pieces)


def _boards(bundle: Mapping[str, bytes], resources: str) -> tuple[dict[str, bytes], list[str]]:
    """The bundle's files below ``resources`` (keys relative to it) and its ``board/boardN_0.qml`` keys in
    board order."""
    images = {k[len(resources) :]: v for k, v in bundle.items() if k.startswith(resources)}
    boards = sorted(
        (k for k in images if re.fullmatch(r"board/board\d+_0\.qml", k)),
        key=lambda k: int(re.findall(r"\d+", k)[0]),
    )
    return images, boards


def _decode(images: Mapping[str, bytes], path: str, what: str, mode: str) -> Image.Image:
    """The image ``path`` of ``images`` in ``mode``.

    Raises:
        PuzzleError: ``path`` missing or undecodable, named as ``what``.
    """
    if path not in images:
        raise PuzzleError(f"{what} {path} is not in the bundle")
    try:
        with Image.open(io.BytesIO(images[path])) as opened:
            return opened.convert(mode)
    except Exception as e:  # any decoder failure
        raise PuzzleError(f"{what} {path} is not a readable image ({type(e).__name__})") from None


def _fill_holes(rgb: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """``rgb`` ``[H, W, 3]`` float with every uncovered pixel (``covered`` ``[H, W]`` False) set to the mean
    of its covered 8-neighbours, growing inwards until none is left."""
    rgb, covered = rgb.copy(), covered.copy()
    while not covered.all():
        total = np.zeros_like(rgb)
        count = np.zeros(covered.shape)
        padded_rgb = np.pad(rgb * covered[..., None], ((1, 1), (1, 1), (0, 0)))
        padded = np.pad(covered.astype(float), 1)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                total += padded_rgb[dy : dy + rgb.shape[0], dx : dx + rgb.shape[1]]
                count += padded[dy : dy + rgb.shape[0], dx : dx + rgb.shape[1]]
        grow = ~covered & (count > 0)
        if not grow.any():
            raise PuzzleError("no covered pixel to fill the holes from")
        rgb[grow] = total[grow] / count[grow][:, None]
        covered = covered | grow
    return rgb


def assemble_board(board: Board, images: Mapping[str, bytes]) -> tuple[Image.Image, int]:
    """The painting of ``board`` (RGB) and the number of pixels inside it that no piece covered.

    ``images`` maps the pieces' paths (as in :attr:`Board.pieces`) to their encoded files. Each piece is
    pasted with its centre at ``(x · width, y · height)``; the painting is the bounding box of the pasted
    pixels less :data:`MARGIN` px on each side (the pieces' outer edges are ragged). The few pixels still
    uncovered (seams one pixel wide where neighbouring pieces' rounded positions leave a gap) are filled
    from their neighbours, so that no black line enters the training styles.

    Raises:
        PuzzleError: a piece missing from ``images`` or undecodable, or more than :data:`MAX_HOLES` of the
            painting uncovered.
    """
    canvas = Image.new("RGBA", (board.width, board.height), (0, 0, 0, 0))
    for path, x, y in board.pieces:
        piece = _decode(images, path, "piece", "RGBA")
        left, top = round(x * board.width - piece.width / 2), round(y * board.height - piece.height / 2)
        layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        layer.paste(piece, (left, top))
        canvas = Image.alpha_composite(canvas, layer)
    pixels = np.asarray(canvas, dtype=np.float64)
    opaque = pixels[..., 3] >= 128
    if not opaque.any():
        raise PuzzleError("the pieces are all transparent")
    rows, cols = np.nonzero(opaque)
    top, bottom = rows.min() + MARGIN, rows.max() + 1 - MARGIN
    left, right = cols.min() + MARGIN, cols.max() + 1 - MARGIN
    if bottom - top < 2 or right - left < 2:
        raise PuzzleError("the pieces cover no painting")
    covered = opaque[top:bottom, left:right]
    holes = int((~covered).sum())
    if holes > MAX_HOLES * covered.size:
        raise PuzzleError(f"the pieces leave {holes / covered.size:.2%} of the painting uncovered (holes)")
    rgb = _fill_holes(pixels[top:bottom, left:right, :3], covered)
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB"), holes


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60]


def paintings(bundle: Mapping[str, bytes]) -> list[tuple[str, Board, Image.Image, int]]:
    """Every board of the paintings bundle (:func:`~experiments.qt_resources.read_rcc`'s files) reassembled:
    ``(file stem, board, painting, uncovered pixels filled)``, in board order.

    Raises:
        PuzzleError: no boards in the bundle, or a board that cannot be reassembled (its name in the message).
    """
    images, boards = _boards(bundle, RESOURCES)
    if not boards:
        raise PuzzleError(f"no puzzle boards under {RESOURCES}board/")
    made = []
    for key in boards:
        try:
            board = parse_board(images[key].decode("utf-8"))
            painting, holes = assemble_board(board, images)
        except (PuzzleError, UnicodeDecodeError) as e:
            raise PuzzleError(f"{key}: {e}") from None
        stem = f"{Path(key).stem.split('_')[0]}_{_slug(board.title) or 'untitled'}"
        made.append((stem, board, painting, holes))
    return made


def parse_detail_board(qml: str) -> tuple[str, str]:
    """``(title, background image path relative to the resource folder)`` of a "details" board's text.

    Raises:
        PuzzleError: no background image.
    """
    background = _BACKGROUND.search(qml)
    if background is None:
        raise PuzzleError("not a details board: no SHAPE_BACKGROUND_IMAGE")
    title = _TITLE.search(qml)
    return (title.group(1) if title else ""), background.group(1)


def detail_paintings(
    bundle: Mapping[str, bytes], painters: tuple[str, ...] = DETAIL_PAINTERS
) -> list[tuple[str, str, Image.Image]]:
    """The whole pictures of the "details" bundle's boards whose title starts with ``"<painter>,"`` for one
    of ``painters``: ``(file stem, title, picture as RGB)``, in board order.

    Raises:
        PuzzleError: no boards, no board of those painters, or a board whose picture is missing or
            unreadable (its name in the message).
    """
    images, boards = _boards(bundle, DETAILS_RESOURCES)
    if not boards:
        raise PuzzleError(f"no boards under {DETAILS_RESOURCES}board/")
    made = []
    for key in boards:
        try:
            title, background = parse_detail_board(images[key].decode("utf-8"))
            if not any(title.startswith(f"{painter},") for painter in painters):
                continue
            picture = _decode(images, background, "picture", "RGB")
        except (PuzzleError, UnicodeDecodeError) as e:
            raise PuzzleError(f"{key}: {e}") from None
        number = re.findall(r"\d+", key)[0]
        made.append((f"details{number}_{_slug(title) or 'untitled'}", title, picture))
    if not made:
        raise PuzzleError(f"no board by {', '.join(painters)} under {DETAILS_RESOURCES}board/")
    return made


def _styles(activity: str, data: bytes, output: Path) -> list[dict[str, object]]:
    """Write the activity's pictures to ``output/style`` (emptied first); their manifest entries.

    Raises:
        ValueError: (RccError, PuzzleError) an unreadable bundle or board.
    """
    bundle = read_rcc(data)
    made: list[tuple[str, str, Image.Image, dict[str, int]]]
    if activity == "details":
        made = [(stem, title, picture, {}) for stem, title, picture in detail_paintings(bundle)]
    else:
        made = [
            (stem, board.title, painting, {"pieces": len(board.pieces), "holes_filled": holes})
            for stem, board, painting, holes in paintings(bundle)
        ]
    shutil.rmtree(output / "style", ignore_errors=True)
    (output / "style").mkdir(parents=True)
    styles: list[dict[str, object]] = []
    for stem, title, picture, extra in made:
        target = output / "style" / f"{stem}.png"
        picture.save(target)
        styles.append(
            {"file": str(target.relative_to(output)), "title": title, "size": list(picture.size), **extra}
        )
    return styles


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--activity",
        choices=sorted(ACTIVITIES),
        default="paintings",
        help="paintings: the jigsaw puzzles' 22 paintings; details: the 'details' activity's Van Gogh "
        "paintings (%(default)s)",
    )
    p.add_argument(
        "--output",
        type=Path,
        help="data set folder (default: " + "; ".join(f"{a}: {o}" for a, (_, o) in ACTIVITIES.items()) + ")",
    )
    args = p.parse_args(argv)
    bundle_path, default_output = ACTIVITIES[args.activity]
    output = (args.output or default_output).expanduser()
    with tempfile.TemporaryDirectory(prefix="adain_debs_") as tmp:
        work = Path(tmp)
        root = fetch_packages([PACKAGE], work)[PACKAGE]
        source = root / bundle_path
        if not source.is_file():
            raise SystemExit(f"gcompris_paintings: error: {PACKAGE} has no {bundle_path}")
        data = source.read_bytes()
        version = package_version(PACKAGE, work)
    try:
        styles = _styles(args.activity, data, output)
    except ValueError as e:  # RccError, PuzzleError
        raise SystemExit(f"gcompris_paintings: error: {PACKAGE}:/{bundle_path}: {e}") from None
    manifest = {
        "package": PACKAGE,
        "version": version,
        "bundle": bundle_path,
        "bundle_sha256": hashlib.sha256(data).hexdigest(),
        "style": styles,
    }
    (output / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(styles)} paintings from {PACKAGE} {version} ({args.activity}) in {output / 'style'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
