"""Qt binary resource bundles (.rcc, format versions 1 to 3): list and read the files stored inside.

gcompris-qt-data ships its pictures in such bundles. Written from the format: a header, then the
stored data, the names (UTF-16) and the tree of nodes; entries may be zlib-compressed (qCompress).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RCC_MAGIC = b"qres"
RCC_COMPRESSED_ZLIB = 0x01
RCC_DIRECTORY = 0x02
RCC_COMPRESSED_ZSTD = 0x04


class UnsupportedEntry(ValueError):
    """An rcc entry stored in a way this builder cannot decode (zstd)."""


@dataclass(frozen=True)
class RccEntry:
    path: str  # resource path inside the bundle, e.g. "/gcompris/src/activities/x/y.webp"
    offset: int  # where the stored bytes start in the bundle
    size: int  # how many bytes are stored
    flags: int


def _rcc_name(blob: bytes, offset: int) -> str:
    (length,) = struct.unpack_from(">H", blob, offset)
    start = offset + 6  # after the length and the 4-byte name hash
    return blob[start : start + 2 * length].decode("utf-16-be")


def _rcc_nodes(blob: bytes) -> Iterator[tuple[str, int, int]]:
    """(path, flags, node position) of every file in the tree, depth first."""
    version, tree, _, names = struct.unpack_from(">IIII", blob, 4)
    node_size = 14 if version == 1 else 22  # version 2 added an 8-byte modification time
    pending, seen = [(0, "")], set()
    while pending:
        index, parent = pending.pop()
        if index in seen:
            raise ValueError("the rcc tree has a loop")
        seen.add(index)
        position = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", blob, position)
        path = f"{parent}/{_rcc_name(blob, names + name_offset)}" if index else ""
        if flags & RCC_DIRECTORY:
            count, first = struct.unpack_from(">II", blob, position + 6)
            pending.extend((child, path) for child in reversed(range(first, first + count)))
        else:
            yield path, flags, position


def list_rcc_entries(blob: bytes) -> list[RccEntry]:
    """Every file stored in a Qt binary resource bundle (rcc format versions 1 to 3)."""
    if blob[:4] != RCC_MAGIC:
        raise ValueError("not a Qt resource bundle (no 'qres' magic)")
    try:
        (data,) = struct.unpack_from(">I", blob, 12)
        entries = []
        for path, flags, position in _rcc_nodes(blob):
            (data_offset,) = struct.unpack_from(">I", blob, position + 10)
            (size,) = struct.unpack_from(">I", blob, data + data_offset)
            entries.append(RccEntry(path, data + data_offset + 4, size, flags))
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"damaged rcc tree ({exc})") from exc
    return entries


def decode_rcc_payload(stored: bytes, flags: int) -> bytes:
    if flags & RCC_COMPRESSED_ZSTD:
        raise UnsupportedEntry("zstd-compressed rcc entry")
    if flags & RCC_COMPRESSED_ZLIB:
        return zlib.decompress(stored[4:])  # qCompress: 4-byte big-endian length, then zlib
    return stored


def read_rcc_entry(bundle: Path, entry: RccEntry) -> bytes:
    with open(bundle, "rb") as stream:
        stream.seek(entry.offset)
        stored = stream.read(entry.size)
    if len(stored) != entry.size:
        raise ValueError(f"rcc entry {entry.path} runs past the end of the bundle")
    return decode_rcc_payload(stored, entry.flags)
