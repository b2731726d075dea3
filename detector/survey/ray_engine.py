"""The Ray Data engine of survey runs: the same :class:`~detector.counting.model.Detector` in a pool of actors.

``sealion-count SOURCES --run DIR --engine ray [--ray-address ADDR] [--workers N]``: the driver lists the photos,
skips what the run directory already holds, and streams the rest through ``map_batches`` (one model per actor,
one GPU per actor where the cluster has GPUs). Each finished photo comes back as the same record the local engine
writes, and the driver appends it to the same run directory, so local and cluster runs resume each other.
Every machine needs this package (``pip install sealion-counter[ray]`` or ``pip install . "ray[data]"``) and reads
the photos at the same paths (a shared file system; ``--save-annotated DIR`` too: the actors write there); the model
is pinned by version and sha256.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detector.counting.records import Failure, PhotoRecord
from detector.errors import DetectorError
from detector.settings import CountOptions, ModelSettings
from detector.survey.runs import PhotoFile, ProgressCallback, RunDirectory, count_file


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is the part used here
    except ImportError as exc:
        raise DetectorError(
            '--engine ray needs Ray Data: pip install "ray[data]" (on every machine of the cluster), or use the '
            "default --engine local."
        ) from exc
    return ray


class CountActor:
    """One loaded model per Ray actor; counts a batch of photo paths into record (or failure) JSON lines."""

    def __init__(self, model: ModelSettings, options: CountOptions, annotated_dir: Path | None = None) -> None:
        import ray

        from detector.counting.model import Detector  # importing detector sets the offline defaults in this worker too

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        self.detector = Detector.load(model, threads=max(1, int(cpus)))  # its share, not every core
        self.options = options
        self.annotated_dir = annotated_dir  # on the shared file system, like the photos

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        import json

        lines, ok = [], []
        for path, folder, size, mtime_ns in zip(
            batch["path"], batch["folder"], batch["size"], batch["mtime_ns"], strict=True
        ):
            photo = PhotoFile(Path(str(path)), str(folder), int(size), int(mtime_ns))
            outcome = count_file(self.detector, photo, self.options, self.annotated_dir)
            lines.append(json.dumps(outcome.to_dict()))
            ok.append(isinstance(outcome, PhotoRecord))
        return {"line": lines, "ok": ok}


@dataclass(frozen=True)
class RayEngine:
    """The Ray engine (:class:`~detector.survey.runs.Engine`): ``workers`` actors, each loading ``model``, on the
    cluster at ``address`` (None starts a local Ray)."""

    model: ModelSettings
    address: str | None = None
    workers: int = 1

    def count_into_run(
        self,
        photos: Sequence[PhotoFile],
        run: RunDirectory,
        options: CountOptions,
        annotated_dir: Path | None = None,
        on_done: ProgressCallback | None = None,
    ) -> None:
        import json

        ray = _import_ray()
        if not photos:
            return
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        items = [{"path": str(p.path), "folder": p.folder, "size": p.size, "mtime_ns": p.mtime_ns} for p in photos]
        dataset = ray.data.from_items(items, override_num_blocks=min(len(items), max(self.workers * 4, 1)))
        counted = dataset.map_batches(
            CountActor,
            fn_constructor_kwargs={"model": self.model, "options": options, "annotated_dir": annotated_dir},
            batch_size=1,  # one photo per call: each line reaches the driver (and the disk) as soon as it is counted
            concurrency=max(1, self.workers),
            num_gpus=1 if gpus else 0,
            num_cpus=1,
        )
        for row in counted.iter_rows():
            data = json.loads(row["line"])
            run.record(PhotoRecord.from_dict(data) if row["ok"] else Failure.from_dict(data), on_done)
