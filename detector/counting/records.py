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
from typing import Any, TextIO

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
    geo: dict[str, Any] | None = None  # a raster's placement, GSD, scale and animals' sites (detector.geo.raster)

    def to_dict(self) -> dict[str, Any]:
        """The result's JSON (:meth:`CountResult.to_dict`, boxes included) with the file fields next to it."""
        data = {
            **self.result.to_dict(include_boxes=True),
            "file": self.file,
            "folder": self.folder,
            "sha256": self.sha256,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "metadata": self.metadata.to_dict(),
        }
        if self.geo is not None:
            data["geo"] = self.geo
        return data

    def groups(self) -> list[tuple[str, str | None, dict[str, int]]]:
        """(folder, site, counts) of this record: one group, its folder, when no site polygons were given; else one
        per site its animals fall in (site None: outside every polygon), each animal counted in its own."""
        sites = (self.geo or {}).get("sites")
        if sites is None:
            return [(self.folder, None, self.result.counts)]
        names = self.result.class_names
        per_site: dict[str | None, dict[str, int]] = {}
        for site, class_id in zip(sites, self.result.class_id.tolist(), strict=True):
            counts = per_site.setdefault(site, dict.fromkeys(names, 0))
            counts[names[class_id]] += 1
        return [(self.folder, site, counts) for site, counts in per_site.items()] or [(self.folder, None, {})]

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
            geo=data.get("geo"),
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
    with path.open("w", newline="") as handle:
        write_counts_csv_to(handle, records, failures, errors)
    return path


def write_counts_csv_to(
    handle: TextIO,
    records: Sequence[PhotoRecord],
    failures: Sequence[Failure] = (),
    errors: CountUncertainty | None = None,
) -> None:
    """:func:`write_counts_csv`'s rows into an open text stream (``sys.stdout`` for ``--out -``)."""
    class_names = records[0].result.class_names if records else ()
    header = counts_header(class_names)
    errors = errors or CountUncertainty()
    writer = csv.writer(handle)
    writer.writerow(header)
    for record in records:
        uncertainty = errors.photo_row(class_names, record.result.counts)
        row = [*record.result.csv_row(), *uncertainty, *record.metadata.csv_row(), record.sha256, ""]
        row[0] = record.file
        writer.writerow(row)
    for failure in failures:
        writer.writerow([failure.file, *[""] * (len(header) - 2), failure.error])


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
    the mean. With site polygons (``--sites``) a ``site`` column follows the folder and each folder has one row per
    site its animals fall in (``-``: outside every polygon); ``photos`` then counts the rasters with animals there."""
    errors = errors or CountUncertainty()
    per_group: dict[tuple[str, str | None], dict[str, Any]] = {}
    class_names: tuple[str, ...] = ()
    with_sites = False
    for record in records:
        class_names = class_names or record.result.class_names
        for folder, site, counts in record.groups():
            with_sites = with_sites or (record.geo or {}).get("sites") is not None
            entry = per_group.setdefault((folder, site), {"photos": 0, "failed": 0, "counts": {}, "each": []})
            entry["photos"] += 1
            entry["each"].append(counts)
            for name, count in counts.items():
                entry["counts"][name] = entry["counts"].get(name, 0) + count
    for failure in failures:
        per_group.setdefault((failure.folder, None), {"photos": 0, "failed": 0, "counts": {}, "each": []})[
            "failed"
        ] += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    site_column = ["site"] if with_sites else []
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "folder",
                *site_column,
                "photos",
                "failed",
                *class_names,
                "total",
                *CountUncertainty.folder_header(class_names),
            ]
        )
        for folder, site in sorted(per_group, key=lambda key: (key[0], key[1] is None, key[1] or "")):
            entry = per_group[(folder, site)]
            counts = {name: entry["counts"].get(name, 0) for name in class_names}
            writer.writerow(
                [folder or ".", *([site or "-"] if with_sites else []), entry["photos"], entry["failed"],
                 *counts.values(), sum(counts.values()), *errors.folder_row(class_names, entry["each"])]
            )  # fmt: skip
    return path
