"""Write files whole (to a temporary name in the same folder, then rename over the target), and keep a results
folder's earlier files rather than write over them."""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; a written file gets the mode open() would give it (0644 under umask 022).
_FILE_MODE = 0o666 & ~_umask()


def write_atomic(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), _FILE_MODE)
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Written into every results folder the operator fills: whose results they are, so a later analysis of the same
# name can tell its own files from an earlier one's.
RESULTS_OWNER_FILE = ".modelanalysis-owner.json"
STAMP = re.compile(r"\d{8}T\d{6}Z")


def results_owner(folder: Path) -> dict[str, object] | None:
    """The owner record of a results folder, or None (no record, or one that does not parse)."""
    try:
        record = json.loads((folder / RESULTS_OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_own_results(record: dict[str, object] | None, uid: str, generation: int) -> bool:
    """Whether a folder's files are the ones this analysis generation wrote (a retried results Job)."""
    return record is not None and record.get("uid") == uid and record.get("generation") == generation


def set_aside_earlier_results(folder: Path, uid: str, generation: int) -> Path | None:
    """Move a results folder that holds anyone else's files (an earlier analysis of the same name, an earlier
    generation of this one, files put there by hand) to a sibling `<name>.earlier-<UTC time>`, and return where.
    Nothing is ever deleted. The time is when the earlier files were written; its capitals keep the sibling's
    name out of what a Kubernetes object (so an analysis) can be called."""
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return None
    record = results_owner(folder) if folder.is_dir() else None
    if is_own_results(record, uid, generation):
        return None
    written = str((record or {}).get("writtenAt") or "").replace("-", "").replace(":", "")
    # The record may be anyone's: only a plain time goes into the new name, never a path.
    stamp = (
        written
        if STAMP.fullmatch(written)
        else datetime.fromtimestamp(folder.stat().st_mtime, UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    target = folder.with_name(f"{folder.name}.earlier-{stamp}")
    n = 2
    while target.exists():
        target, n = folder.with_name(f"{folder.name}.earlier-{stamp}-{n}"), n + 1
    folder.rename(target)
    return target


def write_results_owner(folder: Path, record: dict[str, object]) -> None:
    write_atomic(folder / RESULTS_OWNER_FILE, json.dumps(record, sort_keys=True) + "\n")
