"""GeoTIFF orthomosaics on real pixels: memory, time and counts of a 16,000 × 16,000 px mosaic, and the GSD's scale
against ``--female-length``'s.

    python -m benchmarks.geo_mosaic [--size 16000] [--work DIR] [--out FILE]
    python -m benchmarks.geo_mosaic --write-photo 5 5.tif     # one photo as a GeoTIFF (the docs' map)

The pixels are real NOAA survey photos (``fullres-raw/``); their placement is **synthetic**: UTM zone 4N
(EPSG:32604), upper-left corner at E 500,000 m, N 6,300,000 m (the Alaska Peninsula), 3 cm pixels. The NOAA photos
carry no ground sample distance; 3 cm is chosen so that the 2.4 m reference adult female
(:data:`detector.geo.scale.REFERENCE_LENGTH_M`) spans the 80 px the models learned.

The mosaic repeats square crops of the photos where a window of the count lands on each crop exactly (copies at
every other window start, nodata between them, the mask written into the GeoTIFF): the count of such a window must
equal the crop counted alone as a photo, and the crop's animals in the mosaic (centres inside its footprint, from
whichever window kept them) are compared with it too. The count runs in a child process, whose peak RSS is
measured. Writes ``benchmarks/results/geo_mosaic.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO_ROOT, SHARED_DATA, log, write_results

SYNTHETIC_CRS = "EPSG:32604"  # UTM zone 4N: a synthetic placement, the pixels are real
SYNTHETIC_ORIGIN = (500_000.0, 6_300_000.0)  # upper-left corner (E, N) in metres
SYNTHETIC_GSD_M = 0.03  # 3 cm: the 2.4 m reference female is 80 px, as in the NOAA originals
RAW_PHOTOS = ("5", "42", "44", "50", "43")  # fullres-raw ids
CROP = 3328  # the square crop of each photo (the short side of the 4992 × 3328 originals)


def write_geotiff(
    path: Path,
    rgb: np.ndarray,
    gsd_m: float = SYNTHETIC_GSD_M,
    crs: str | None = SYNTHETIC_CRS,
    origin: tuple[float, float] = SYNTHETIC_ORIGIN,
    compress: str = "deflate",
) -> Path:
    """``rgb`` (rows × cols × 3 uint8) as a tiled GeoTIFF with the given (synthetic) placement; no CRS: plain TIFF."""
    import rasterio
    from rasterio.transform import from_origin

    height, width = rgb.shape[:2]
    placement = {"crs": crs, "transform": from_origin(origin[0], origin[1], gsd_m, gsd_m)} if crs else {}
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8", tiled=True,
        blockxsize=512, blockysize=512, compress=compress, **placement,
    ) as dst:  # fmt: skip
        dst.write(np.moveaxis(rgb, -1, 0))
    return path


def photo(photo_id: str, data: Path = SHARED_DATA) -> np.ndarray:
    """A full-resolution raw NOAA photo, decoded (RGB)."""
    from detector.counting.images import load_image

    return load_image(data / "fullres-raw" / f"{photo_id}.jpg")


def crop(rgb: np.ndarray, side: int = CROP) -> np.ndarray:
    """The photo's central ``side`` × ``side`` square."""
    height, width = rgb.shape[:2]
    top, left = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(rgb[top : top + side, left : left + side])


def copy_origins(size: int, window: int, overlap: int) -> list[int]:
    """Where copies go along one axis: every other window start (the count's windows, detector.geo.windows)."""
    from detector.geo.windows import _starts

    return [start for number, start in enumerate(_starts(size, window, overlap)) if number % 2 == 0]


def build_mosaic(path: Path, crops: Sequence[np.ndarray], size: int, window: int, overlap: int) -> list[dict]:
    """A ``size`` × ``size`` GeoTIFF (deflate, 512 px blocks, internal mask) with the crops (cycled) at the copy
    origins but the middle one, nodata elsewhere; written copy by copy, never whole. Returns each copy's crop number
    and place."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    side = crops[0].shape[0]
    origins = copy_origins(size, window, overlap)
    placed = []
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
        rasterio.open(
            path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8", tiled=True, blockxsize=512,
            blockysize=512, compress="deflate", crs=SYNTHETIC_CRS,
            transform=from_origin(*SYNTHETIC_ORIGIN, SYNTHETIC_GSD_M, SYNTHETIC_GSD_M),
        ) as dst,
    ):  # fmt: skip
        valid = np.full((side, side), 255, dtype=np.uint8)
        middle = origins[len(origins) // 2] if len(origins) >= 3 else None  # left empty: its window is all nodata
        for row in origins:
            for col in origins:
                if row == col == middle:
                    continue
                number = len(placed) % len(crops)
                area = Window(col, row, side, side)
                dst.write(np.moveaxis(crops[number], -1, 0), window=area)
                dst.write_mask(valid, window=area)
                placed.append({"crop": number, "col": col, "row": row, "side": side})
    return placed


def child(mosaic: Path, crops_npz: Path, window: int, out: Path) -> None:
    """Count the mosaic (and each crop alone) in this process; write the numbers to ``out``."""
    from detector.counting.model import Detector
    from detector.geo.features import centres as centres_of
    from detector.geo.raster import GeoOptions, count_raster
    from detector.settings import ModelSettings

    detector = Detector.load(ModelSettings(device="cpu"))
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    crops = np.load(crops_npz)
    alone = [detector.count(crops[name], photo_scale=1.0).counts for name in sorted(crops.files)]
    del crops
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    counted = count_raster(detector, mosaic, geo=GeoOptions(window_px=window))
    seconds = time.perf_counter() - started
    result = counted.result
    centres = np.column_stack(centres_of(result.xyxy))
    payload = {
        "alone": alone,
        "seconds": seconds,
        "rss_before_count_kb": rss_before,
        "rss_model_loaded_kb": rss_loaded,
        "counts": result.counts,
        "windows": counted.windows,
        "windows_skipped": counted.windows_skipped,
        "per_window": counted.per_window,
        "geo": {k: v for k, v in counted.geo_dict().items() if k != "crs"},
        "centres": centres.round(1).tolist(),
        "class_id": result.class_id.tolist(),
        "class_names": list(result.class_names),
    }
    out.write_text(json.dumps(payload))


def measure(size: int, work: Path, data: Path = SHARED_DATA, count_window: int | None = None) -> dict[str, Any]:
    """Build the mosaic in ``work``, count it in a child process (windows of ``count_window`` px, default the crops'
    side, where each copy is one window), compare per copy; the numbers as a dict."""
    from detector.geo.scale import overlap_px
    from detector.geo.windows import centres_in

    window, overlap = CROP, overlap_px(1.0)
    crops = [crop(photo(photo_id, data)) for photo_id in RAW_PHOTOS]
    mosaic = work / "mosaic.tif"
    started = time.perf_counter()
    placed = build_mosaic(mosaic, crops, size, window, overlap)
    built_s = time.perf_counter() - started
    crops_npz = work / "crops.npz"
    np.savez(crops_npz, **{f"c{number}": one for number, one in enumerate(crops)})
    del crops
    out = work / "child.json"
    log(f"mosaic {size}x{size} ({mosaic.stat().st_size / 2**20:.0f} MiB) built in {built_s:.0f} s; counting")
    code = (
        "import sys; from pathlib import Path; from benchmarks.geo_mosaic import child; "
        f"child(Path({str(mosaic)!r}), Path({str(crops_npz)!r}), {count_window or window}, Path({str(out)!r}))"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    counted = json.loads(out.read_text())
    names = counted["class_names"]
    centres = np.asarray(counted["centres"]).reshape(-1, 2)
    class_id = np.asarray(counted["class_id"], dtype=int)
    windows = {(w["col"], w["row"]): w for w in counted["per_window"]}
    copies = []
    for copy in placed:
        col, row, side = copy["col"], copy["row"], copy["side"]
        inside = centres_in(np.column_stack([centres, centres]), (col, row, col + side, row + side))
        kept = np.bincount(class_id[inside], minlength=len(names))
        copies.append({
            **copy,
            "alone": counted["alone"][copy["crop"]],
            "window_found": windows[(col, row)]["found"] if (col, row) in windows else None,
            "in_footprint": dict(zip(names, kept.tolist(), strict=True)),
        })  # fmt: skip
    return {
        "size": size,
        "mosaic_mib": round(mosaic.stat().st_size / 2**20, 1),
        "photos": [f"fullres-raw/{photo_id}.jpg" for photo_id in RAW_PHOTOS],
        "placement": f"synthetic: {SYNTHETIC_CRS}, origin {SYNTHETIC_ORIGIN}, {SYNTHETIC_GSD_M * 100:g} cm pixels",
        "window_px": counted["geo"]["window_px"],
        "overlap_px": overlap,
        "count_seconds": round(counted["seconds"], 1),
        "peak_rss_mib": round(peak_kb / 1024, 1),
        "rss_model_loaded_mib": round(counted["rss_model_loaded_kb"] / 1024, 1),
        "rss_before_count_mib": round(counted["rss_before_count_kb"] / 1024, 1),
        "windows": counted["windows"],
        "windows_skipped": counted["windows_skipped"],
        "counts": counted["counts"],
        "geo": counted["geo"],
        "copies": copies,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=16_000, help="mosaic side in pixels (default %(default)s)")
    parser.add_argument("--work", type=Path, default=None, help="where the mosaic is written (default: a temp dir)")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the NOAA sample (default: ../shared)")
    parser.add_argument("--out", default=None, help="JSON results (default benchmarks/results/geo_mosaic.json)")
    parser.add_argument("--count-window", type=int, default=None, metavar="N",
                        help="count with N px windows (default: the crops' side, one window per copy)")  # fmt: skip
    parser.add_argument("--write-photo", nargs=2, metavar=("ID", "TIF"), help="write one fullres-raw photo as a "
                        "GeoTIFF with the synthetic placement, and stop")  # fmt: skip
    args = parser.parse_args(argv)
    if args.write_photo:
        print(write_geotiff(Path(args.write_photo[1]), photo(args.write_photo[0], args.data)))
        return 0
    with tempfile.TemporaryDirectory(prefix="geo-mosaic-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = measure(args.size, work, args.data, args.count_window)
    path = write_results("geo_mosaic", result, args.out)
    same = sum(c["window_found"] == c["alone"] for c in result["copies"])
    print(
        f"{args.size}² px: {result['count_seconds']} s, peak RSS {result['peak_rss_mib']} MiB, "
        f"{result['windows']} windows ({result['windows_skipped']} all nodata); {same}/{len(result['copies'])} copy "
        f"windows count as their crop alone; wrote {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
