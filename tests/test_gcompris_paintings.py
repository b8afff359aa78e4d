"""experiments.gcompris_paintings: puzzle boards cut here from a known image are put back together."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from experiments.gcompris_paintings import (
    DETAILS_RESOURCES,
    MARGIN,
    RESOURCES,
    PuzzleError,
    assemble_board,
    detail_paintings,
    paintings,
    parse_board,
    parse_detail_board,
)

BOARD_W, BOARD_H, LEFT, TOP = 90, 70, 10, 12  # the painting sits at (LEFT, TOP) on the board
OVERLAP = 3  # px each piece reaches into its neighbours (the jigsaw tabs)


def _painting(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (40, 60, 3), dtype=np.uint8)  # [H, W, 3]


def _pieces(
    painting: np.ndarray, hole: tuple[int, int] | None = None
) -> list[tuple[str, bytes, float, float]]:
    """2 × 2 opaque pieces with overlapping borders, as ``(name, webp-less PNG bytes, centre x, centre y)``
    with centres as fractions of the board; ``hole``: one painting pixel (y, x) left transparent."""
    h, w = painting.shape[:2]
    rgba = np.concatenate([painting, np.full((h, w, 1), 255, np.uint8)], axis=2)
    if hole is not None:
        rgba[hole[0], hole[1], 3] = 0
    pieces = []
    for row, (y0, y1) in enumerate(((0, h // 2 + OVERLAP), (h // 2 - OVERLAP, h))):
        for col, (x0, x1) in enumerate(((0, w // 2 + OVERLAP), (w // 2 - OVERLAP, w))):
            piece = np.zeros_like(rgba[y0:y1, x0:x1])
            keep = rgba[y0:y1, x0:x1, 3] > 0
            piece[keep] = rgba[y0:y1, x0:x1][keep]
            if hole is not None and y0 <= hole[0] < y1 and x0 <= hole[1] < x1:
                piece[hole[0] - y0, hole[1] - x0] = 0
            buffer = io.BytesIO()
            Image.fromarray(piece, "RGBA").save(buffer, format="PNG")
            cx, cy = (LEFT + x0 + (x1 - x0) / 2) / BOARD_W, (TOP + y0 + (y1 - y0) / 2) / BOARD_H
            pieces.append((f"image/piece_{row}{col}.png", buffer.getvalue(), cx, cy))
    return pieces


def _qml(title: str, pieces) -> str:
    items = "".join(
        f'      {{\n         "pixmapfile" : "{name}",\n'
        f'         "x" : "{x:.6f}",\n         "y" : "{y:.6f}"\n      }},\n'
        for name, _, x, y in pieces
    )
    return (
        "import QtQuick 2.12\nQtObject {\n"
        f'   property string instruction: qsTr("{title}")\n   property var levels : [\n'
        '      {\n         "pixmapfile" : "image/bg.svg",\n         "type" : "SHAPE_BACKGROUND_IMAGE",\n'
        f'         "width": {BOARD_W},\n         "height": {BOARD_H}\n      }},\n{items}   ]\n}}\n'
    )


def test_a_board_is_parsed_with_its_title_size_and_piece_centres() -> None:
    pieces = _pieces(_painting())
    board = parse_board(_qml("Albrecht Dürer, Lion - 1494", pieces))
    assert board.title == "Albrecht Dürer, Lion - 1494"
    assert (board.width, board.height) == (BOARD_W, BOARD_H)
    assert [p[0] for p in board.pieces] == [p[0] for p in pieces]
    assert board.pieces[0][1:] == pytest.approx(pieces[0][2:], abs=1e-6)
    with pytest.raises(PuzzleError, match="no background size or no pieces"):
        parse_board("QtObject { }")


def test_the_pieces_give_back_the_painting_less_the_margin() -> None:
    painting = _painting()
    pieces = _pieces(painting)
    image, holes = assemble_board(parse_board(_qml("t", pieces)), {name: data for name, data, _, _ in pieces})
    assert holes == 0
    np.testing.assert_array_equal(np.asarray(image), painting[MARGIN:-MARGIN, MARGIN:-MARGIN])


def test_a_seam_pixel_is_filled_from_its_neighbours() -> None:
    painting = _painting()
    y, x = 20, 30  # where all four pieces overlap: cleared in each of them
    pieces = _pieces(painting, hole=(y, x))
    image, holes = assemble_board(parse_board(_qml("t", pieces)), {name: data for name, data, _, _ in pieces})
    assert holes == 1
    got = np.asarray(image).astype(float)
    expected = painting.astype(float).copy()
    neighbours = [(y + dy, x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    expected[y, x] = np.mean([painting[p].astype(float) for p in neighbours], axis=0)
    np.testing.assert_allclose(got, np.rint(expected)[MARGIN:-MARGIN, MARGIN:-MARGIN], atol=0.5)


def test_boards_with_holes_or_missing_pieces_are_refused() -> None:
    pieces = _pieces(_painting())
    board = parse_board(_qml("t", pieces))
    images = {name: data for name, data, _, _ in pieces}
    with pytest.raises(PuzzleError, match=r"piece image/piece_11\.png is not in the bundle"):
        assemble_board(board, {k: v for k, v in images.items() if not k.endswith("11.png")})
    with pytest.raises(PuzzleError, match=r"piece image/piece_00\.png is not a readable image"):
        assemble_board(board, {**images, "image/piece_00.png": b"not an image"})
    shifted = parse_board(_qml("t", [(n, d, x + 0.2 * (n.endswith("11.png")), y) for n, d, x, y in pieces]))
    with pytest.raises(PuzzleError, match="uncovered"):
        assemble_board(shifted, images)


def test_every_board_of_a_bundle_is_named_by_its_number_and_title() -> None:
    bundle = {}
    for number, seed in ((2, 1), (10, 2)):
        pieces = _pieces(_painting(seed))
        bundle[f"{RESOURCES}board/board{number}_0.qml"] = _qml(
            f"Painter {number}, Work - 1890", pieces
        ).encode()
        bundle.update({f"{RESOURCES}{name}": data for name, data, _, _ in pieces})
    bundle[f"{RESOURCES}board/board10_0.qml.bak"] = b"ignored"
    made = paintings(bundle)
    assert [stem for stem, *_ in made] == ["board2_painter_2_work_1890", "board10_painter_10_work_1890"]
    np.testing.assert_array_equal(np.asarray(made[1][2]), _painting(2)[MARGIN:-MARGIN, MARGIN:-MARGIN])
    bundle[f"{RESOURCES}board/board3_0.qml"] = b"QtObject { }"
    with pytest.raises(PuzzleError, match=r"board/board3_0\.qml: not a paintings board"):
        paintings(bundle)
    with pytest.raises(PuzzleError, match="no puzzle boards"):
        paintings({})


def _detail_qml(title: str, background: str) -> str:
    """A "details" board as GCompris writes it: the whole picture first, then the details to find."""
    return (
        "import QtQuick 2.12\nQtObject {\n"
        f'   property string instruction: qsTr("{title}")\n   property var levels: [\n'
        f'      {{\n         "pixmapfile" : "{background}",\n         "type" : "SHAPE_BACKGROUND_IMAGE"\n'
        '      },\n      {\n         "pixmapfile" : "image/x_0.webp",\n         "x" : "0.1",\n'
        '         "y" : "0.2",\n         "dropAreaSize" : "8"\n      }\n   ]\n}\n'
    )


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def test_details_boards_of_the_named_painters_give_their_whole_pictures() -> None:
    assert parse_detail_board(
        _detail_qml("Vincent van Gogh, The Harvest - 1888", "image/h_background.webp")
    ) == (
        "Vincent van Gogh, The Harvest - 1888",
        "image/h_background.webp",
    )
    with pytest.raises(PuzzleError, match="no SHAPE_BACKGROUND_IMAGE"):
        parse_detail_board("QtObject { }")
    boards = {
        5: ("Vincent van Gogh, The Harvest - 1888", "image/harvest_background.png", 1),
        12: ("Sydney Opera House, Australia", "image/opera_background.png", 2),  # a photograph: left out
        3: ("Vincent van Gogh, The Church at Auvers-sur-Oise - 1890", "image/church_background.png", 3),
    }
    bundle = {}
    for number, (title, background, seed) in boards.items():
        bundle[f"{DETAILS_RESOURCES}board/board{number}_0.qml"] = _detail_qml(title, background).encode()
        bundle[f"{DETAILS_RESOURCES}{background}"] = _png(_painting(seed))
    made = detail_paintings(bundle)
    assert [(stem, title) for stem, title, _ in made] == [
        ("details3_vincent_van_gogh_the_church_at_auvers_sur_oise_1890", boards[3][0]),
        ("details5_vincent_van_gogh_the_harvest_1888", boards[5][0]),
    ]
    np.testing.assert_array_equal(np.asarray(made[1][2]), _painting(1))  # the whole picture, uncut
    assert [stem for stem, *_ in detail_paintings(bundle, painters=("Sydney Opera House",))] == [
        "details12_sydney_opera_house_australia"
    ]
    with pytest.raises(PuzzleError, match="no board by Claude Monet"):
        detail_paintings(bundle, painters=("Claude Monet",))
    with pytest.raises(PuzzleError, match=r"board5_0\.qml: picture image/harvest_background\.png is not in"):
        detail_paintings({k: v for k, v in bundle.items() if "harvest" not in k})
    bundle[f"{DETAILS_RESOURCES}image/church_background.png"] = b"not an image"
    with pytest.raises(PuzzleError, match=r"board3_0\.qml: picture .* is not a readable image"):
        detail_paintings(bundle)
    with pytest.raises(PuzzleError, match="no boards"):
        detail_paintings({})
