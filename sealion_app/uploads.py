"""Turn uploaded files (photos and .zip archives of photos) into a flat list of photos to count, safely."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from detector.images import SUPPORTED_SUFFIXES

# Limits for one .zip: enough for a survey day's photos, far below what would exhaust the server.
MAX_ZIP_MEMBERS = 1000
MAX_MEMBER_BYTES = 200 * 1024**2
MAX_ZIP_TOTAL_BYTES = 4 * 1024**3
MAX_COMPRESSION_RATIO = 200  # photos barely compress; a huge ratio means a zip bomb


@dataclass(frozen=True)
class Photo:
    """One photo to count: a file on disk, or a member of an uploaded zip read on demand."""

    name: str  # what the user sees: "IMG_1.jpg" or "survey.zip/day1/IMG_1.jpg"
    path: Path | None = None
    archive: Path | None = None
    member: str | None = None

    def read(self) -> Path | bytes:
        """A path the detector can open, or the bytes of the zip member."""
        if self.path is not None:
            return self.path
        assert self.archive is not None and self.member is not None
        with zipfile.ZipFile(self.archive) as archive:
            return archive.read(self.member)


@dataclass(frozen=True)
class Rejected:
    """An uploaded file (or zip member) that is not counted, and why, in one sentence."""

    name: str
    reason: str


def _is_hidden_or_metadata(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _expand_zip(path: Path, label: str) -> Iterator[Photo | Rejected]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Rejected(label, f"not a readable .zip archive ({exc}).")
        return
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not _is_hidden_or_metadata(m.filename)]
        if len(members) > MAX_ZIP_MEMBERS:
            yield Rejected(label, f"the archive holds {len(members)} files; at most {MAX_ZIP_MEMBERS} are accepted.")
            return
        total = sum(m.file_size for m in members)
        if total > MAX_ZIP_TOTAL_BYTES:
            yield Rejected(label, f"the archive unpacks to {total / 1024**3:.1f} GB; at most 4 GB are accepted.")
            return
        if not members:
            yield Rejected(label, "the archive contains no files.")
            return
        for member in members:
            name = f"{label}/{member.filename}"
            suffix = PurePosixPath(member.filename).suffix.lower()
            if suffix == ".zip":
                yield Rejected(name, "zip archives inside a zip are not opened; upload them separately.")
            elif suffix not in SUPPORTED_SUFFIXES:
                yield Rejected(name, f"not a photo (file type {suffix or 'unknown'}); skipped.")
            elif member.file_size > MAX_MEMBER_BYTES:
                size_mb = member.file_size / 1024**2
                yield Rejected(name, f"{size_mb:.0f} MB is larger than the {MAX_MEMBER_BYTES // 1024**2} MB allowed.")
            elif member.compress_size and member.file_size / member.compress_size > MAX_COMPRESSION_RATIO:
                yield Rejected(name, "compressed suspiciously well (a zip bomb?); skipped.")
            else:
                yield Photo(name=name, archive=path, member=member.filename)


def expand_uploads(paths: Sequence[str | Path]) -> list[Photo | Rejected]:
    """Uploaded files in order; a .zip is replaced by the photos inside it (non-photos listed as rejected)."""
    items: list[Photo | Rejected] = []
    for raw in paths:
        path = Path(raw)
        label = path.name
        if path.suffix.lower() == ".zip" or (path.is_file() and zipfile.is_zipfile(path) and path.suffix == ""):
            items.extend(_expand_zip(path, label))
        else:
            items.append(Photo(name=label, path=path))
    return items
