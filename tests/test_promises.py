"""Promises the README and docs make that no other test held: resuming drops a half-written last line, failed
files are tried again, an unchanged file whose modification time moved is known by its sha256, local and Ray runs
resume each other, the upload caps (4 GB unpacked, a member declaring over 200 MB, 1000 photos across zips and
uploads) with their real limits, and the one-line torch/torchvision mismatch error."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector.counting.records import Failure, PhotoRecord
from detector.counting.results import CountResult
from detector.environment import TORCH_PAIR, check_torch_pair
from detector.survey.runs import FAILURES, RESULTS, PhotoFile, RunDirectory
from sealion_app.uploads import (
    MAX_MEMBER_BYTES,
    MAX_PHOTOS_PER_REQUEST,
    MAX_ZIP_TOTAL_BYTES,
    Photo,
    Rejected,
    expand_uploads,
)
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES

SETTINGS = {"model": {"version": "test", "sha256": "0" * 64}}


def _jpeg(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def _record(photo: PhotoFile, sha256: str) -> PhotoRecord:
    result = CountResult.empty(SEA_LION_CLASSES, (64, 48), source=str(photo.path))
    return PhotoRecord(str(photo.path), result, photo.folder, sha256, photo.size, photo.mtime_ns)


def _photo(folder: Path, name: str, seed: int = 0) -> PhotoFile:
    path = folder / name
    path.write_bytes(_jpeg(seed))
    return PhotoFile.stat(path, folder.name)


# --- survey runs ---------------------------------------------------------------------------------------------------


def test_resuming_drops_a_half_written_last_line(tmp_path):
    a, b = _photo(tmp_path, "a.jpg"), _photo(tmp_path, "b.jpg", 1)
    run = RunDirectory.open(tmp_path / "run", SETTINGS)
    run.add(_record(a, "a" * 64))
    whole = (tmp_path / "run" / RESULTS).read_bytes()
    line_b = json.dumps(_record(b, "b" * 64).to_dict()).encode()
    (tmp_path / "run" / RESULTS).write_bytes(whole + line_b[: len(line_b) // 2])  # killed while writing b's line

    resumed = RunDirectory.open(tmp_path / "run", SETTINGS)
    assert (tmp_path / "run" / RESULTS).read_bytes() == whole  # the half line is gone, a's line kept
    records, _ = resumed.outcome()
    assert [r.file for r in records] == [str(a.path)]
    resumed.add(_record(b, "b" * 64))  # the next append starts on a fresh line
    assert [r.file for r in resumed.outcome()[0]] == [str(a.path), str(b.path)]


def test_failed_files_are_tried_again_and_a_later_success_clears_them(tmp_path):
    photo = _photo(tmp_path, "a.jpg")
    run = RunDirectory.open(tmp_path / "run", SETTINGS)
    run.add_failure(Failure(str(photo.path), f"{photo.path}: cannot read the file.", photo.folder))
    assert RunDirectory.open(tmp_path / "run", SETTINGS).pending([photo]) == ([photo], 0)  # tried again
    assert [f.file for f in run.outcome()[1]] == [str(photo.path)]
    run.add(_record(photo, "a" * 64))
    assert run.outcome()[1] == [] and len(run.outcome()[0]) == 1
    assert (tmp_path / "run" / FAILURES).read_text().count("\n") == 1  # the history stays on disk


def test_a_file_whose_mtime_moved_is_known_by_its_sha256_and_a_changed_one_is_recounted(tmp_path):
    from detector.files import sha256_file

    photo = _photo(tmp_path, "a.jpg")
    run = RunDirectory.open(tmp_path / "run", SETTINGS)
    run.add(_record(photo, sha256_file(photo.path)))
    os.utime(photo.path, ns=(photo.mtime_ns + 10**9, photo.mtime_ns + 10**9))  # copied, touched: same bytes
    touched = PhotoFile.stat(photo.path, photo.folder)
    assert touched.mtime_ns != photo.mtime_ns and run.pending([touched]) == ([], 1)

    data = bytearray(photo.path.read_bytes())
    data[-3] ^= 0xFF  # other content, the same size
    photo.path.write_bytes(bytes(data))
    os.utime(photo.path, ns=(photo.mtime_ns, photo.mtime_ns))  # even with the old modification time back
    changed = PhotoFile.stat(photo.path, photo.folder)
    assert changed.size == photo.size and run.pending([changed]) == ([], 1)  # size+mtime equal: trusted, skipped
    os.utime(photo.path, ns=(photo.mtime_ns + 2 * 10**9,) * 2)
    moved = PhotoFile.stat(photo.path, photo.folder)
    assert run.pending([moved]) == ([moved], 0)  # mtime moved and the sha256 differs: counted again


def _cli(*args: str, weights: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALION_")}
    return subprocess.run(
        [sys.executable, "-m", "detector", "count", *args], cwd=REPO_ROOT, capture_output=True, text=True,
        env={**env, "SEALION_WEIGHTS": str(weights), "SEALION_DEVICE": "cpu"}, timeout=900,
    )  # fmt: skip


def _keep_first_lines(results: Path, keep: int) -> None:
    """The state a stopped run leaves: the first ``keep`` photos' lines."""
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:keep]))


@pytest.mark.slow  # two Ray starts: minutes on a small machine
def test_local_and_ray_runs_resume_each_other(tiny_models, tmp_path):
    pytest.importorskip("ray.data", reason='the Ray engine is optional: pip install "ray[data]"')
    survey = tmp_path / "flight"
    survey.mkdir()
    for index in range(6):
        (survey / f"IMG_{index}.jpg").write_bytes(_jpeg(index, (320, 240)))
    run = tmp_path / "run"
    options = [str(survey), "--run", str(run), "--photo-scale", "1", "--conf", "0.05", "--quiet"]
    first = _cli(*options, weights=tiny_models["v1"])
    assert first.returncode == 0, first.stderr
    whole = {line["file"]: line["counts"] for line in map(json.loads, (run / RESULTS).read_text().splitlines())}

    _keep_first_lines(run / RESULTS, 2)  # a local run stopped after 2 photos ...
    ray = _cli(*options, "--engine", "ray", "--workers", "1", weights=tiny_models["v1"])  # ... resumed by Ray
    assert ray.returncode == 0, ray.stderr
    assert "2 of 6 photos already counted" in ray.stderr
    _keep_first_lines(run / RESULTS, 4)  # and the reverse: a Ray run stopped after 4, resumed locally
    local = _cli(*options, weights=tiny_models["v1"])
    assert local.returncode == 0 and "4 of 6 photos already counted" in local.stderr, local.stderr

    lines = [json.loads(line) for line in (run / RESULTS).read_text().splitlines()]
    assert len(lines) == 6 and {line["file"]: line["counts"] for line in lines} == whole  # none twice, same counts


# --- upload limits, at their real values ---------------------------------------------------------------------------


def _declare_sizes(archive: Path, declared: int) -> None:
    """Rewrite every central-directory entry's uncompressed size (the header a reader trusts before inflating)."""
    data = bytearray(archive.read_bytes())
    position = data.find(b"PK\x01\x02")
    while position != -1:
        data[position + 24 : position + 28] = declared.to_bytes(4, "little")
        position = data.find(b"PK\x01\x02", position + 4)
    archive.write_bytes(bytes(data))


def test_a_member_declaring_over_200_mb_is_refused_before_it_is_read(tmp_path):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("huge.jpg", _jpeg())
    _declare_sizes(archive, MAX_MEMBER_BYTES + 1)
    (item,) = expand_uploads([archive], workdir=tmp_path)
    assert isinstance(item, Rejected) and item.name == "big.zip/huge.jpg"
    assert item.reason == f"200 MB is larger than the {MAX_MEMBER_BYTES // 1024**2} MB allowed."


def test_an_archive_unpacking_to_over_4_gb_is_refused_whole(tmp_path):
    archive = tmp_path / "season.zip"
    members = MAX_ZIP_TOTAL_BYTES // (250 * 1024**2) + 1  # 17 members declaring 250 MB each: 4.15 GB
    with zipfile.ZipFile(archive, "w") as out:
        for index in range(members):
            out.writestr(f"{index}.jpg", _jpeg(index))
    _declare_sizes(archive, 250 * 1024**2)
    (item,) = expand_uploads([archive], workdir=tmp_path)
    assert isinstance(item, Rejected) and item.name == "season.zip"
    assert item.reason == "the archive unpacks to 4.2 GB; at most 4 GB are accepted."


def test_the_photo_cap_counts_across_zips_and_loose_uploads(tmp_path):
    photo = _jpeg()
    archives = []
    for name in ("day1.zip", "day2.zip"):
        archives.append(tmp_path / name)
        with zipfile.ZipFile(archives[-1], "w") as out:
            for index in range(MAX_PHOTOS_PER_REQUEST // 2):
                out.writestr(f"{index}.jpg", photo)
    loose = tmp_path / "loose.jpg"
    loose.write_bytes(photo)
    items = expand_uploads([*archives, loose], workdir=tmp_path)
    assert len(items) == MAX_PHOTOS_PER_REQUEST + 1
    assert all(isinstance(item, Photo) for item in items[:-1])  # 500 + 500 from the zips: exactly the cap
    assert isinstance(items[-1], Rejected) and items[-1].name == "loose.jpg"
    assert f"over the {MAX_PHOTOS_PER_REQUEST} photos one request may count" in items[-1].reason


# --- the torch/torchvision pair -------------------------------------------------------------------------------------


def test_a_mismatched_torch_pair_stops_the_cli_with_one_line_naming_both(tmp_path):
    check_torch_pair()  # this environment's pair works
    fake = tmp_path / "site"
    for name, version in (("torch", "2.15.0+cpu"), ("torchvision", "0.29.2+cu121")):
        info = fake / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), str(REPO_ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "detector", "count", str(tmp_path)], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: torch 2.15.0+cpu and torchvision 0.29.2+cu121 are different builds (cpu vs cu121); install a "
        f"matching pair, e.g. pip install torch=={TORCH_PAIR[0]} torchvision=={TORCH_PAIR[1]} (add --index-url "
        "https://download.pytorch.org/whl/cpu for the CPU-only build)."
    ]
