"""Survey runs: count thousands of photos into a run directory that survives a crash and resumes.

A run directory holds:

- ``run.json`` — the settings that decide the counts (model version and sha256, runtime, thresholds, IoU, tiles,
  photo scale); a rerun with other settings is refused unless it asks for a new run;
- ``results.jsonl`` — one :class:`~detector.counting.records.PhotoRecord` per line, appended and flushed to disk as each
  photo finishes (a killed process loses the photos in the network and at most a half-written line, dropped next run);
- ``failures.jsonl`` — the files that could not be counted, with the reason;
- ``counts.csv`` and ``summary.csv`` — written at the end of every run (and of every resumed run) from the lines.

A photo is identified by its path and its content: on a rerun it is skipped when its size and modification time
are unchanged, or when its sha256 equals the recorded one; otherwise it is counted again (the newer line wins).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from detector.counting.images import SUPPORTED_SUFFIXES
from detector.counting.records import Failure, PhotoRecord, write_counts_csv, write_summary_csv
from detector.counting.uncertainty import CountUncertainty
from detector.errors import DetectorError, RunSettingsError
from detector.files import atomic_path, sha256_bytes, sha256_file
from detector.settings import DEFAULT_DECODERS, DEFAULT_GROUP, CountOptions

if TYPE_CHECKING:
    from detector.counting.model import Detector, Prepared
    from detector.counting.results import CountResult

RUN_SETTINGS = "run.json"
RESULTS = "results.jsonl"
FAILURES = "failures.jsonl"
COUNTS_CSV = "counts.csv"
SUMMARY_CSV = "summary.csv"
RUN_FORMAT = 1


@dataclass(frozen=True)
class PhotoFile:
    """A photo to count: its absolute path, the folder it is summed under, and its size and modification time."""

    path: Path
    folder: str
    size: int
    mtime_ns: int

    @classmethod
    def stat(cls, path: Path, folder: str) -> PhotoFile:
        info = path.stat()
        return cls(path, folder, info.st_size, info.st_mtime_ns)

    @property
    def file(self) -> str:
        return str(self.path)

    @property
    def stem(self) -> str:
        return self.path.stem

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


class PhotoSource(Protocol):
    """What the counting pipeline (:func:`count_photos`) takes: a photo file here, or an upload in the app. ``file``
    names it in its record; ``read_bytes`` raises OSError (or a DetectorError) for a photo that cannot be read."""

    folder: str
    mtime_ns: int

    @property
    def file(self) -> str: ...

    @property
    def stem(self) -> str: ...

    def read_bytes(self) -> bytes: ...


def find_photos(sources: Sequence[str | Path], recursive: bool) -> tuple[list[PhotoFile], list[Failure]]:
    """Photo files named or inside the named folders (each once, in a stable order), and the paths that are not.

    A photo's *folder* is its directory relative to the folder given (the folder's own name at the top), so that
    ``survey/2026-06-14/site-A/*.jpg`` sums per site and flight in ``summary.csv``.
    """
    photos: dict[Path, PhotoFile] = {}
    missing: list[Failure] = []
    for source in sources:
        root = Path(source)
        if root.is_dir():
            pattern = "**/*" if recursive else "*"
            for path in sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES):
                relative = path.parent.relative_to(root)
                folder = str(Path(root.resolve().name) / relative) if str(relative) != "." else root.resolve().name
                photos.setdefault(path.resolve(), PhotoFile.stat(path.resolve(), folder))
        elif root.is_file():
            photos.setdefault(root.resolve(), PhotoFile.stat(root.resolve(), root.resolve().parent.name))
        else:
            missing.append(Failure(str(root), f"{root}: no such file or folder."))
    return list(photos.values()), missing


def _repair(path: Path) -> None:
    """Drop a last line that a killed process left half-written, so the next append starts on a fresh line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        data = path.read_bytes()
        handle.truncate(data.rfind(b"\n") + 1)


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


class RunDirectory:
    """The files of one run; appends are flushed and fsync'ed one photo at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def open(cls, folder: Path, settings: dict[str, Any], new_run: bool = False) -> RunDirectory:
        """Start or resume the run in ``folder`` with ``settings``.

        Different settings than the folder's are refused with :class:`RunSettingsError` naming them, unless
        ``new_run``: then the previous run's files are moved to ``previous-<time>/`` inside the folder (kept).
        """
        folder.mkdir(parents=True, exist_ok=True)
        run = cls(folder)
        saved_path = folder / RUN_SETTINGS
        wanted = {"format": RUN_FORMAT, **settings}
        if saved_path.is_file():
            saved = json.loads(saved_path.read_text())
            if saved != wanted:
                if not new_run:
                    changed = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
                    details = "; ".join(f"{k}: {saved.get(k)!r} → {wanted.get(k)!r}" for k in changed)
                    raise RunSettingsError(
                        f"Run {folder} was counted with other settings ({details}). Rerun with the same settings to "
                        "resume it, give another --run folder, or add --new-run to start over (the old run is kept "
                        "in a previous-* folder inside it)."
                    )
                run._archive()
        elif new_run:
            run._archive()
        saved_path.write_text(json.dumps(wanted, indent=2, sort_keys=True) + "\n")
        for name in (RESULTS, FAILURES):
            _repair(folder / name)
        return run

    def _archive(self) -> None:
        names = [n for n in (RUN_SETTINGS, RESULTS, FAILURES, COUNTS_CSV, SUMMARY_CSV) if (self.folder / n).exists()]
        if not names:
            return
        archive = self.folder / f"previous-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6:06d}"
        archive.mkdir()
        for name in names:
            shutil.move(self.folder / name, archive / name)

    def _append(self, name: str, data: dict[str, Any]) -> None:
        line = json.dumps(data, separators=(",", ":")) + "\n"
        with (self.folder / name).open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def add(self, record: PhotoRecord) -> None:
        self._append(RESULTS, record.to_dict())

    def add_failure(self, failure: Failure) -> None:
        self._append(FAILURES, failure.to_dict())

    def record(self, outcome: PhotoRecord | Failure, on_done: ProgressCallback | None = None) -> None:
        """Append a counted photo or a failure, then tell ``on_done``."""
        if isinstance(outcome, PhotoRecord):
            self.add(outcome)
        else:
            self.add_failure(outcome)
        if on_done:
            on_done(outcome)

    def outcome(self) -> tuple[list[PhotoRecord], list[Failure]]:
        """The counted photos, one per file (its latest line wins), sorted by file; and the files whose latest
        attempt failed (a later success removes a file from these). Each file of lines is read once."""
        counted = {data["file"]: data for data in _lines(self.folder / RESULTS)}
        failed = {data["file"]: data for data in _lines(self.folder / FAILURES)}
        records = [PhotoRecord.from_dict(counted[file]) for file in sorted(counted)]
        failures = [Failure.from_dict(data) for file, data in failed.items() if file not in counted]
        return records, failures

    def pending(self, photos: Iterable[PhotoFile]) -> tuple[list[PhotoFile], int]:
        """The photos still to count, and how many were skipped as already counted with the same content."""
        done = {data["file"]: data for data in _lines(self.folder / RESULTS)}
        todo, skipped = [], 0
        for photo in photos:
            seen = done.get(str(photo.path))
            unchanged = seen is not None and (
                (seen.get("size"), seen.get("mtime_ns")) == (photo.size, photo.mtime_ns)
                or (seen.get("size") == photo.size and seen.get("sha256") == sha256_file(photo.path))
            )
            if unchanged:
                skipped += 1
            else:
                todo.append(photo)
        return todo, skipped

    def export(
        self, records: Sequence[PhotoRecord], failures: Sequence[Failure], errors: CountUncertainty | None = None
    ) -> tuple[Path, Path]:
        """Write ``counts.csv`` and ``summary.csv`` from :meth:`outcome` (atomically: a reader never sees half a
        file), with the model version's count ``errors`` (:mod:`detector.counting.uncertainty`)."""
        for name, writer in ((COUNTS_CSV, write_counts_csv), (SUMMARY_CSV, write_summary_csv)):
            with atomic_path(self.folder / name) as partial:
                writer(partial, records, failures, errors)
        return self.folder / COUNTS_CSV, self.folder / SUMMARY_CSV


ProgressCallback = Callable[[PhotoRecord | Failure], None]


def _scale_setting(options: CountOptions, reference_class: str | None) -> str | float:
    """``auto``, a photo scale, or the reference length asked for (``cow 40 px``)."""
    if options.reference_length is not None:
        return f"{options.reference_class or reference_class} {options.reference_length:g} px"
    return "auto" if options.photo_scale is None else float(options.photo_scale)


def run_settings(detector: Detector, options: CountOptions) -> dict[str, Any]:
    """What decides a run's counts, as stored in ``run.json``: model, runtime, thresholds, tiles, photo scale."""
    info = detector.info
    return {
        "model": {"version": info.version, "sha256": info.sha256},
        "runtime": detector.runtime,
        "greyscale_input": bool(info.greyscale_input),
        "conf": {name: round(value, 4) for name, value in detector.thresholds(options).items()},
        "iou": float(options.iou),
        "slicing": str(options.slicing),
        "tile_size": int(options.tile_size or detector.imgsz),
        "overlap": float(options.overlap),
        "photo_scale": _scale_setting(options, info.reference_class),
        "gate": "on" if options.gate else "off",
    }


@dataclass
class LoadedPhoto:
    """A photo file read and decoded at the model's scale: the half of a count that needs no model."""

    photo: PhotoSource
    data: bytes
    prepared: Prepared


def load_file(detector: Detector, photo: PhotoSource, options: CountOptions) -> LoadedPhoto | Failure:
    """Read and decode one photo (thread-safe: the model is not used); a failure names the file."""
    try:
        data = photo.read_bytes()
    except OSError as exc:
        return Failure(photo.file, f"{photo.file}: cannot read the file ({exc.strerror or exc}).", photo.folder)
    except DetectorError as exc:
        return Failure(photo.file, str(exc), photo.folder)
    try:
        prepared = detector.prepare(data, options, source=photo.file)  # the bytes, decoded at working size
    except DetectorError as exc:
        return Failure(photo.file, str(exc), photo.folder)
    return LoadedPhoto(photo, data, prepared)


def finish_file(
    detector: Detector,
    loaded: LoadedPhoto | Failure,
    options: CountOptions,
    annotated_dir: Path | None = None,
    result: CountResult | None = None,
) -> PhotoRecord | Failure:
    """Count a loaded photo into a record (the network half; ``result``: its count, already made with others), or
    pass its failure on; never raises for a bad photo."""
    from detector.counting.images import load_image
    from detector.counting.metadata import read_metadata

    if isinstance(loaded, Failure):
        return loaded
    photo, data = loaded.photo, loaded.data
    try:
        if result is None:
            (result,) = detector.count_many([loaded.prepared], options)
        if annotated_dir is not None:
            from PIL import Image

            from detector.counting.overlay import draw_overlay

            rgb = load_image(data, label=photo.file)
            annotated_dir.mkdir(parents=True, exist_ok=True)
            annotated = Image.fromarray(draw_overlay(rgb, result))
            annotated.save(annotated_dir / f"{photo.stem}.annotated.jpg", quality=90)
    except DetectorError as exc:
        return Failure(photo.file, str(exc), photo.folder)
    return PhotoRecord(
        file=photo.file,
        result=result,
        folder=photo.folder,
        sha256=sha256_bytes(data),
        size=len(data),
        mtime_ns=photo.mtime_ns,
        metadata=read_metadata(data),
    )


def count_file(
    detector: Detector, photo: PhotoSource, options: CountOptions, annotated_dir: Path | None = None
) -> PhotoRecord | Failure:
    """Count one photo file into a record, or a failure that names the file; never raises for a bad photo."""
    return finish_file(detector, load_file(detector, photo, options), options, annotated_dir)


def finish_group(
    detector: Detector, group: Sequence[LoadedPhoto | Failure], options: CountOptions, annotated_dir: Path | None = None
) -> Iterator[PhotoRecord | Failure]:
    """Count decoded photos together (:meth:`Detector.stream`: their tiles share the network's
    batches), giving each photo's record as soon as its last tile is counted, in order; after a failure the rest of
    the group is counted one photo at a time, so a failure names its file."""
    loaded = [one for one in group if isinstance(one, LoadedPhoto)]
    stream = detector.stream([one.prepared for one in loaded], options) if len(loaded) > 1 else None
    for one in group:
        result = None
        if stream is not None and isinstance(one, LoadedPhoto):
            try:
                result = next(stream)
            except DetectorError:
                stream = None  # finish_file counts this photo and the rest of the group again, alone
        yield finish_file(detector, one, options, annotated_dir, result)


def count_photos(
    detector: Detector,
    photos: Sequence[PhotoSource],
    options: CountOptions,
    annotated_dir: Path | None = None,
    decoders: int = DEFAULT_DECODERS,
    group: int = DEFAULT_GROUP,
) -> Iterator[PhotoRecord | Failure]:
    """Count photos in order, pipelined: ``decoders`` threads read and decode the next photos while the network
    counts the current ``group`` of photos, their tiles batched together (``decoders`` 0: one after the other)."""
    if decoders < 1:
        for photo in photos:
            yield count_file(detector, photo, options, annotated_dir)
        return
    from concurrent.futures import ThreadPoolExecutor

    group = max(1, group)
    window = group + 2 * decoders  # decoded ahead: the next group is ready when the network finishes this one
    pool = ThreadPoolExecutor(max_workers=decoders, thread_name_prefix="decode")
    try:
        pending = [pool.submit(load_file, detector, photo, options) for photo in photos[:window]]
        submitted = len(pending)
        while pending:
            batch, pending = pending[:group], pending[group:]
            loaded = [future.result() for future in batch]
            more = photos[submitted : submitted + len(batch)]
            pending += [pool.submit(load_file, detector, photo, options) for photo in more]
            submitted += len(more)
            yield from finish_group(detector, loaded, options, annotated_dir)
    finally:  # also when the caller stops early (an interrupt): photos not yet decoded are not decoded
        pool.shutdown(wait=True, cancel_futures=True)


class Engine(Protocol):
    """What counts a run's photos into its directory. Every engine takes these same arguments; where it runs (this
    process, a Ray cluster) is set up when it is made."""

    def count_into_run(
        self,
        photos: Sequence[PhotoFile],
        run: RunDirectory,
        options: CountOptions,
        annotated_dir: Path | None = None,
        on_done: ProgressCallback | None = None,
    ) -> None:
        """Count ``photos``, append each record or failure to ``run`` as it is done (then tell ``on_done``), and
        save each annotated photo into ``annotated_dir`` when one is given."""


@dataclass(frozen=True)
class LocalEngine:
    """The local engine: this process's detector, ``decoders`` threads decoding ahead (:func:`count_photos`)."""

    detector: Detector
    decoders: int = DEFAULT_DECODERS

    def count_into_run(
        self,
        photos: Sequence[PhotoFile],
        run: RunDirectory,
        options: CountOptions,
        annotated_dir: Path | None = None,
        on_done: ProgressCallback | None = None,
    ) -> None:
        for outcome in count_photos(self.detector, photos, options, annotated_dir, self.decoders):
            run.record(outcome, on_done)
