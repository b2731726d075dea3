"""File helpers that every part shares: content hashes (photos, weights, exports) and atomic writes (reviews, run
tables, training records), each written once."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of bytes in memory (an uploaded photo)."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks (a weights file or a photo never sits in memory twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The process umask, for the mode a plain open() would give a new file (mkstemp's temporary files are 0600); it can
# only be read by setting it, so once, at import.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path in ``path``'s folder to write to; on success it is synced and renamed over ``path`` (a reader
    sees the old file or the new one, never half of one), on failure removed. The file keeps the mode of the one it
    replaces, else gets the mode a plain open() would give it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(partial, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_UMASK)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8", newline="")
    return Path(path)
