"""Result files packed into bounded stores (ConfigMaps hold at most 1 MiB each) and put back together.

A file that fits goes whole; a larger one is cut into `<name>.part-000`, `.part-001`, ... at UTF-8 character
boundaries, and `join_parts` concatenates them in order. Small results stay exactly as they were: one store,
every file whole under its own name.
"""

from __future__ import annotations

import re

PART = re.compile(r"^(?P<name>.+)\.part-(?P<index>\d{3,})$")


def _utf8_pieces(text: str, limit: int) -> list[str]:
    data = text.encode()
    pieces, start = [], 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # never cut inside a character
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    return pieces or [""]


def _size(key: str, value: str) -> int:
    return len(key.encode()) + len(value.encode())


def pack_files(files: dict[str, str], limit: int) -> list[dict[str, str]]:
    """The files as stores of at most `limit` bytes (keys and values), in order; a file too big for one store is
    split into parts."""
    entries: list[tuple[str, str]] = []
    for name, text in files.items():
        if _size(name, text) <= limit:
            entries.append((name, text))
        else:
            pieces = _utf8_pieces(text, limit - len(name.encode()) - 16)
            entries.extend((f"{name}.part-{i:03d}", piece) for i, piece in enumerate(pieces))
    stores: list[dict[str, str]] = [{}]
    used = 0
    for key, value in entries:
        size = _size(key, value)
        if used + size > limit and stores[-1]:
            stores.append({})
            used = 0
        stores[-1][key] = value
        used += size
    return stores


def join_parts(data: dict[str, str]) -> dict[str, str]:
    """Files as they were before packing, from the union of the stores' data."""
    files: dict[str, str] = {}
    parts: dict[str, list[tuple[int, str]]] = {}
    for key, value in data.items():
        found = PART.match(key)
        if found:
            parts.setdefault(found["name"], []).append((int(found["index"]), value))
        else:
            files[key] = value
    for name, pieces in parts.items():
        files[name] = "".join(value for _, value in sorted(pieces))
    return files
