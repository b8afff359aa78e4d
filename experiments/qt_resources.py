"""Read the files out of a compiled Qt resource bundle (``.rcc``, made by Qt's ``rcc -binary``).

Some Debian packages ship their images only inside such bundles (e.g. GCompris's famous paintings in
``gcompris-qt-data``); :mod:`experiments.training_data` unpacks them with :func:`read_rcc`. The format
(Qt's ``rcc.cpp``, versions 1–3, big-endian):

* header: ``b"qres"``, version, tree offset, data offset, names offset (uint32 each), and from version 3
  a uint32 of global flags;
* tree: nodes of 14 bytes (version 1) or 22 bytes (from version 2: + uint64 last-modified time) starting
  with uint32 name offset and uint16 flags; a directory node (flag 2) then holds uint32 child count and
  uint32 index of its first child, a file node uint16 territory, uint16 language and uint32 data offset;
  node 0 is the root directory;
* names: uint16 length, uint32 hash, then the name in UTF-16BE;
* data: uint32 length, then the bytes; zlib-compressed entries (flag 1) start with the uint32 size of the
  uncompressed data; zstd-compressed entries (flag 4) are refused (no decoder in the standard library).
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["RccError", "read_rcc"]

_COMPRESSED, _DIRECTORY, _COMPRESSED_ZSTD = 1, 2, 4


class RccError(ValueError):
    """A malformed or unsupported Qt resource bundle."""


def _unpack(fmt: str, data: bytes, offset: int) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error:
        raise RccError(f"truncated bundle: {struct.calcsize(fmt)} bytes needed at offset {offset}") from None


def read_rcc(data: bytes) -> dict[str, bytes]:
    """Every file of the bundle ``data``: ``{"dir/sub/name.ext": contents}`` (paths without the root's ``/``).

    Raises:
        RccError: not a Qt resource bundle, an unsupported version or compression, or a truncated file.
    """
    if data[:4] != b"qres":
        raise RccError("not a Qt resource bundle (no 'qres' magic)")
    version, tree, payload, names = _unpack(">4I", data, 4)
    if version not in (1, 2, 3):
        raise RccError(f"unsupported Qt resource version {version} (1 to 3 are read)")
    node_size = 14 if version == 1 else 22

    def name_of(offset: int) -> str:
        (length,) = _unpack(">H", data, names + offset)
        start = names + offset + 6
        raw = data[start : start + 2 * length]
        if len(raw) != 2 * length:
            raise RccError(f"truncated name at offset {names + offset}")
        return raw.decode("utf-16-be")

    files: dict[str, bytes] = {}
    pending = [(0, "")]
    seen: set[int] = set()
    while pending:
        index, prefix = pending.pop()
        if index in seen:
            raise RccError(f"the directory tree loops at node {index}")
        seen.add(index)
        node = tree + index * node_size
        name_offset, flags = _unpack(">IH", data, node)
        name = "" if index == 0 else name_of(name_offset)
        path = f"{prefix}/{name}" if prefix else name
        if flags & _DIRECTORY:
            count, first = _unpack(">II", data, node + 6)
            pending.extend((first + k, path) for k in range(count))
            continue
        (offset,) = _unpack(">I", data, node + 10)
        (length,) = _unpack(">I", data, payload + offset)
        body = data[payload + offset + 4 : payload + offset + 4 + length]
        if len(body) != length:
            raise RccError(f"truncated data of {path!r}")
        if flags & _COMPRESSED_ZSTD:
            raise RccError(f"{path!r} is zstd-compressed, which is not supported")
        if flags & _COMPRESSED:
            try:
                body = zlib.decompress(body[4:])
            except zlib.error as e:
                raise RccError(f"{path!r}: bad zlib data ({e})") from None
        files[path] = body
    return files
