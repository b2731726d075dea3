"""Per-photo records and the one writer of count tables: CLI ``--out``, survey runs, the app's batch CSV.

A :class:`PhotoRecord` is a :class:`~.results.CountResult` plus where the photo came from (path, folder,
sha256, size, modification time) and what its EXIF says; a :class:`Failure` is a file that was not counted.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector.counting.metadata import PhotoMetadata
from detector.counting.results import CountResult
from detector.counting.uncertainty import CountUncertainty


@dataclass(frozen=True)
class PhotoRecord:
    """One counted photo: the result, the file it came from, and its survey metadata."""

    file: str  # the path as counted (absolute in a run), or the name inside an upload
    result: CountResult
    folder: str = ""  # site/flight grouping for summary.csv: the photo's folder relative to what was given
    sha256: str = ""  # of the file's bytes
    size: int = 0  # bytes
    mtime_ns: int = 0  # modification time of the file when it was counted
    metadata: PhotoMetadata = field(default_factory=PhotoMetadata)

    def to_dict(self) -> dict[str, Any]:
        """The result's JSON (:meth:`CountResult.to_dict`, boxes included) with the file fields next to it."""
        return {
            **self.result.to_dict(include_boxes=True),
            "file": self.file,
            "folder": self.folder,
            "sha256": self.sha256,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "metadata": self.metadata.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhotoRecord:
        return cls(
            file=str(data["file"]),
            result=CountResult.from_dict(data),
            folder=str(data.get("folder") or ""),
            sha256=str(data.get("sha256") or ""),
            size=int(data.get("size") or 0),
            mtime_ns=int(data.get("mtime_ns") or 0),
            metadata=PhotoMetadata.from_dict(data.get("metadata")),
        )


@dataclass(frozen=True)
class Failure:
    """A file that was not counted, and why (one line that names the file)."""

    file: str
    error: str
    folder: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "error": self.error, "folder": self.folder}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Failure:
        return cls(str(data["file"]), str(data["error"]), str(data.get("folder") or ""))


def counts_header(class_names: Sequence[str]) -> list[str]:
    """Columns of the counts CSV: the result's columns, each class's typical error and the classes counted worse
    than guessing the mean (:class:`CountUncertainty`), the survey metadata, the file's sha256, the error."""
    return [
        *CountResult.csv_header(class_names), *CountUncertainty.photo_header(class_names), *PhotoMetadata.csv_header(),
        "sha256", "error",
    ]  # fmt: skip


def write_counts_csv(
    path: Path, records: Sequence[PhotoRecord], failures: Sequence[Failure] = (), errors: CountUncertainty | None = None
) -> Path:
    """One row per counted photo, then one per failed file (its name and the error, the rest empty); ``errors``:
    the model version's (empty columns when unknown)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    class_names = records[0].result.class_names if records else ()
    header = counts_header(class_names)
    uncertainty = (errors or CountUncertainty()).photo_row(class_names)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for record in records:
            row = [*record.result.csv_row(), *uncertainty, *record.metadata.csv_row(), record.sha256, ""]
            row[0] = record.file
            writer.writerow(row)
        for failure in failures:
            writer.writerow([failure.file, *[""] * (len(header) - 2), failure.error])
    return path


def write_counts_json(
    path: Path, records: Sequence[PhotoRecord], failures: Sequence[Failure] = (), errors: CountUncertainty | None = None
) -> Path:
    """``{"results", "failures", "uncertainty"}``: the records, the failures, the version's errors per class."""
    path.parent.mkdir(parents=True, exist_ok=True)
    class_names = records[0].result.class_names if records else ()
    payload = {
        "results": [r.to_dict() for r in records],
        "failures": [f.to_dict() for f in failures],
        "uncertainty": (errors or CountUncertainty()).to_dict(class_names),
    }
    path.write_text(json.dumps(payload, indent=2))
    return path


def write_counts(
    path: Path, records: Sequence[PhotoRecord], failures: Sequence[Failure] = (), errors: CountUncertainty | None = None
) -> Path:
    """``.json`` → :func:`write_counts_json`, anything else → :func:`write_counts_csv`."""
    writer = write_counts_json if path.suffix.lower() == ".json" else write_counts_csv
    return writer(path, records, failures, errors)


def write_summary_csv(
    path: Path, records: Iterable[PhotoRecord], failures: Iterable[Failure] = (), errors: CountUncertainty | None = None
) -> Path:
    """One row per folder (site / flight): photos counted, files failed, animals per class, total, then each
    class's and the total's interval (:meth:`CountUncertainty.folder_row`) and the classes counted worse than guessing
    the mean."""
    errors = errors or CountUncertainty()
    per_folder: dict[str, dict[str, Any]] = {}
    class_names: tuple[str, ...] = ()
    for record in records:
        class_names = class_names or record.result.class_names
        entry = per_folder.setdefault(record.folder, {"photos": 0, "failed": 0, "counts": {}})
        entry["photos"] += 1
        for name, count in record.result.counts.items():
            entry["counts"][name] = entry["counts"].get(name, 0) + count
    for failure in failures:
        per_folder.setdefault(failure.folder, {"photos": 0, "failed": 0, "counts": {}})["failed"] += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["folder", "photos", "failed", *class_names, "total", *CountUncertainty.folder_header(class_names)]
        )
        for folder in sorted(per_folder):
            entry = per_folder[folder]
            counts = {name: entry["counts"].get(name, 0) for name in class_names}
            writer.writerow(
                [folder or ".", entry["photos"], entry["failed"], *counts.values(), sum(counts.values()),
                 *errors.folder_row(counts, entry["photos"])]
            )  # fmt: skip
    return path
