"""Turn uploaded files (photos and .zip archives of photos) into a flat list of photos to count, safely.

Every uploaded file and every zip member ends up as exactly one :class:`Photo` or :class:`Rejected`, named by its
path inside the archive (``survey.zip/day1/IMG_1.jpg``; a repeated name gets `` (2)``, `` (3)`` …). Members are
read through a streaming reader with a hard byte cap, so an archive whose headers lie about sizes cannot inflate
more than :data:`MAX_MEMBER_BYTES` into memory.
"""

from __future__ import annotations

import struct
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from detector.counting.images import SUPPORTED_SUFFIXES
from sealion_app.errors import MemberTooLarge

# Limits for one request: enough for a survey day's photos, far below what would exhaust the server.
MAX_ZIP_MEMBERS = 1000
MAX_PHOTOS_PER_REQUEST = 1000  # more: a clear refusal per photo; whole surveys go through `sealion-count --run`
MAX_MEMBER_BYTES = 200 * 1024**2
MAX_ZIP_TOTAL_BYTES = 4 * 1024**3
MAX_COMPRESSION_RATIO = 200  # photos barely compress; a huge ratio means a zip bomb
READ_CHUNK = 1024**2


@dataclass(frozen=True)
class Photo:
    """One photo to count: a file on disk, or a member of an uploaded zip read on demand."""

    name: str  # what the user sees: "IMG_1.jpg" or "survey.zip/day1/IMG_1.jpg"
    path: Path | None = None
    archive: Path | None = None
    member: int | None = None  # index in the archive's list of entries (names may repeat)

    def read(self) -> Path | bytes:
        """A path the detector can open, or the bytes of the zip member (at most :data:`MAX_MEMBER_BYTES`)."""
        if self.path is not None:
            return self.path
        assert self.archive is not None and self.member is not None
        with zipfile.ZipFile(self.archive) as archive, archive.open(archive.infolist()[self.member]) as stream:
            chunks, total = [], 0
            while chunk := stream.read(READ_CHUNK):
                total += len(chunk)
                if total > MAX_MEMBER_BYTES:
                    raise MemberTooLarge(
                        f"{self.name}: unpacks to more than {MAX_MEMBER_BYTES // 1024**2} MB although its header "
                        "says less (a zip bomb?); skipped."
                    )
                chunks.append(chunk)
            return b"".join(chunks)


@dataclass(frozen=True)
class Rejected:
    """An uploaded file (or zip member) that is not counted, and why, in one sentence."""

    name: str
    reason: str


def _is_hidden_or_metadata(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return any((part.startswith(".") and part not in {".", ".."}) or part == "__MACOSX" for part in parts)


def _valid_utf8_names(path: Path, workdir: Path) -> Path:
    """The archive itself, or a copy whose entries with invalid UTF-8 names are marked as legacy-encoded.

    ``zipfile`` refuses a whole archive when one entry flagged as UTF-8 is not (UnicodeDecodeError). Clearing
    that flag (bit 11) in the central directory and the local header makes it read the name as cp437 instead: the
    member keeps a visible, unique name and is counted or rejected like any other.
    """
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    if end < 0:
        return path
    entries, _, offset = struct.unpack_from("<HII", data, end + 10)  # end of central directory: count, size, offset
    changed = False
    for _ in range(entries):
        if data[offset : offset + 4] != b"PK\x01\x02":
            break
        (flags,) = struct.unpack_from("<H", data, offset + 8)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, offset + 28)
        (local,) = struct.unpack_from("<I", data, offset + 42)
        name = bytes(data[offset + 46 : offset + 46 + name_len])
        if flags & 0x800:
            try:
                name.decode("utf-8")
            except UnicodeDecodeError:
                struct.pack_into("<H", data, offset + 8, flags & ~0x800)
                if data[local : local + 4] == b"PK\x03\x04":
                    local_flags = struct.unpack_from("<H", data, local + 6)[0]
                    struct.pack_into("<H", data, local + 6, local_flags & ~0x800)
                changed = True
        offset += 46 + name_len + extra_len + comment_len
    if not changed:
        return path
    repaired = workdir / path.name
    repaired.write_bytes(bytes(data))
    return repaired


def _unique(name: str, seen: dict[str, int]) -> str:
    """``name``, or ``name (2)``, ``name (3)`` … when an earlier item had the same name."""
    seen[name] = seen.get(name, 0) + 1
    return name if seen[name] == 1 else f"{name} ({seen[name]})"


def _open_zip(path: Path, workdir: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except UnicodeDecodeError:
        return zipfile.ZipFile(_valid_utf8_names(path, workdir))


def _expand_zip(path: Path, label: str, seen: dict[str, int], workdir: Path) -> Iterator[Photo | Rejected]:
    try:
        archive = _open_zip(path, workdir)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, struct.error) as exc:
        yield Rejected(label, f"not a readable .zip archive ({exc}).")
        return
    with archive:
        entries = list(enumerate(archive.infolist()))
        files = [(i, m) for i, m in entries if not m.is_dir()]
        members = [(i, m) for i, m in files if not _is_hidden_or_metadata(m.filename)]
        hidden = len(files) - len(members)
        if len(members) > MAX_ZIP_MEMBERS:
            yield Rejected(label, f"the archive holds {len(members)} files; at most {MAX_ZIP_MEMBERS} are accepted.")
            return
        total = sum(m.file_size for _, m in members)
        if total > MAX_ZIP_TOTAL_BYTES:
            yield Rejected(label, f"the archive unpacks to {total / 1024**3:.1f} GB; at most 4 GB are accepted.")
            return
        if not members:
            yield Rejected(label, "the archive contains no files." if not hidden else "the archive holds only hidden "
                           f"or macOS metadata files ({hidden}); nothing to count.")  # fmt: skip
            return
        if hidden:
            yield Rejected(label, f"{hidden} hidden or macOS metadata file(s) (dot files, __MACOSX/) skipped.")
        archive_path = Path(archive.filename or path)
        for index, member in members:
            name = _unique(f"{label}/{member.filename}", seen)
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
                yield Photo(name=name, archive=archive_path, member=index)


def expand_uploads(paths: Sequence[str | Path], workdir: Path | None = None) -> list[Photo | Rejected]:
    """Uploaded files in order; a .zip is replaced by the photos inside it (everything else listed as rejected).

    Past :data:`MAX_PHOTOS_PER_REQUEST` photos, each further photo is rejected with the reason. ``workdir`` holds
    repaired copies of archives with broken UTF-8 names (a temporary folder when None).
    """
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sealion-uploads-"))
    items: list[Photo | Rejected] = []
    seen: dict[str, int] = {}
    for raw in paths:
        path = Path(raw)
        label = _unique(path.name, seen)
        if path.suffix.lower() == ".zip" or (path.is_file() and zipfile.is_zipfile(path) and path.suffix == ""):
            items.extend(_expand_zip(path, label, seen, workdir))
        else:
            items.append(Photo(name=label, path=path))
    photos = 0
    for position, item in enumerate(items):
        if isinstance(item, Photo):
            photos += 1
            if photos > MAX_PHOTOS_PER_REQUEST:
                items[position] = Rejected(
                    item.name,
                    f"over the {MAX_PHOTOS_PER_REQUEST} photos one request may count; send it in another request, "
                    "or count whole surveys with `sealion-count FOLDER --run DIR`.",
                )
    return items
