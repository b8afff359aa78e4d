"""experiments.qt_resources: Qt resource bundles written here by a minimal rcc encoder, read back exactly."""

from __future__ import annotations

import struct
import zlib

import pytest

from experiments.qt_resources import RccError, read_rcc


def _rcc(tree: dict, version: int = 3, compress: tuple[str, ...] = (), zstd: tuple[str, ...] = ()) -> bytes:
    """A bundle of ``tree`` (nested dicts of name → bytes or dict), laid out like Qt's rcc: breadth-first
    nodes, each directory's children contiguous; files named in ``compress`` stored zlib-compressed."""
    names, data, nodes = bytearray(), bytearray(), []
    name_at: dict[str, int] = {}

    def name_offset(name: str) -> int:
        if name not in name_at:
            name_at[name] = len(names)
            encoded = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), 0) + encoded)
        return name_at[name]

    nodes.append(None)  # the root, filled below
    pending_dirs = {0: ("", tree, "")}
    order = [0]
    while order:
        index = order.pop(0)
        name, entry, path = pending_dirs.pop(index)
        first = len(nodes)
        children = sorted(entry.items())
        for _ in children:
            nodes.append(None)
        nodes[index] = struct.pack(">IHII", name_offset(name) if index else 0, 2, len(children), first)
        for k, (child, value) in enumerate(children):
            child_path = f"{path}/{child}" if path else child
            if isinstance(value, dict):
                pending_dirs[first + k] = (child, value, child_path)
                order.append(first + k)
                continue
            flags, body = 0, value
            if child_path in compress:
                flags, body = 1, struct.pack(">I", len(value)) + zlib.compress(value)
            if child_path in zstd:
                flags = 4
            nodes[first + k] = struct.pack(">IHHHI", name_offset(child), flags, 0, 0, len(data))
            data.extend(struct.pack(">I", len(body)) + body)
    if version >= 2:
        nodes = [node + b"\0" * 8 for node in nodes]
    header_size = 20 + (4 if version >= 3 else 0)
    tree_bytes = b"".join(nodes)
    tree_at, data_at = header_size, header_size + len(tree_bytes)
    names_at = data_at + len(data)
    header = b"qres" + struct.pack(">4I", version, tree_at, data_at, names_at)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + tree_bytes + bytes(data) + bytes(names)


TREE = {
    "top.txt": b"hello",
    "gcompris": {"src": {"image": {"a.webp": b"\x01\x02" * 50, "b.png": b"png bytes"}, "x.qml": b"qml"}},
    "empty": {},
}
FILES = {
    "top.txt": b"hello",
    "gcompris/src/image/a.webp": b"\x01\x02" * 50,
    "gcompris/src/image/b.png": b"png bytes",
    "gcompris/src/x.qml": b"qml",
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_file_is_read_back_with_its_path(version: int) -> None:
    assert read_rcc(_rcc(TREE, version)) == FILES


def test_zlib_compressed_entries_are_inflated() -> None:
    assert read_rcc(_rcc(TREE, compress=("gcompris/src/image/a.webp", "top.txt"))) == FILES


def test_names_outside_ascii_survive() -> None:
    assert read_rcc(_rcc({"dürer_lion.webp": b"x"})) == {"dürer_lion.webp": b"x"}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b"qrez" + b[4:], "no 'qres' magic"),
        (lambda b: b[:4] + struct.pack(">I", 9) + b[8:], "version 9"),
        (lambda b: b[:30], "truncated"),
        (lambda b: b[:-3], "truncated name"),
    ],
)
def test_damaged_bundles_are_refused_with_the_problem(damage, message: str) -> None:
    with pytest.raises(RccError, match=message):
        read_rcc(damage(_rcc(TREE)))


def test_zstd_entries_are_refused_by_name() -> None:
    with pytest.raises(RccError, match=r"'top\.txt' is zstd-compressed"):
        read_rcc(_rcc(TREE, zstd=("top.txt",)))
