"""Writing a file so that a reader (or a run killed midway) sees the old content or the new, never half."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write data (text is UTF-8) to path through a temporary file beside it and one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp: two processes writing the same file never share a temporary name.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write data atomically unless path already holds exactly it; True when it wrote."""
    path = Path(path)
    if path.is_file() and path.read_bytes() == data:
        return False
    atomic_write(path, data)
    return True
