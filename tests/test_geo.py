"""GeoTIFF orthomosaics, map features and site polygons (detector.geo).

Real pixels, synthetic placement: the NOAA photos are written as GeoTIFFs in UTM zone 4N with 3 cm pixels
(``benchmarks.geo_mosaic``: the photos carry no georeference; 3 cm makes the 2.4 m reference female the 80 px the
models learned). Tests that count need the NOAA sample (they skip without it: set SEALION_NOAA_DATA, README 'Tests');
the 16,000 px mosaic is ``-m slow``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rasterio", reason="the geo extra: pip install 'sealion-counter[geo]'")

import rasterio  # noqa: E402
import shapely  # noqa: E402
from pyproj import Transformer  # noqa: E402
from shapely.geometry import Point, box, shape  # noqa: E402

from benchmarks.geo_mosaic import SYNTHETIC_CRS, SYNTHETIC_GSD_M, SYNTHETIC_ORIGIN, crop, photo, write_geotiff  # noqa: E402
from detector.counting.records import PhotoRecord, write_summary_csv  # noqa: E402
from detector.counting.results import CountResult  # noqa: E402
from detector.counting.scale import scale_from_female_length  # noqa: E402
from detector.errors import DetectorError  # noqa: E402
from detector.geo import require_geo  # noqa: E402
from detector.geo.features import feature_collection, to_lonlat  # noqa: E402
from detector.geo.raster import GeoOptions, count_raster, ground_sample_distance, is_raster_path  # noqa: E402
from detector.geo.scale import REFERENCE_LENGTH_M, scale_from_gsd, window_px  # noqa: E402
from detector.geo.sites import load_sites  # noqa: E402
from detector.geo.windows import centres_in, window_grid  # noqa: E402
from detector.settings import CountOptions  # noqa: E402
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES  # noqa: E402

TO_UTM = Transformer.from_crs("OGC:CRS84", SYNTHETIC_CRS, always_xy=True)
E0, N0 = SYNTHETIC_ORIGIN


def within(a: dict[str, int], b: dict[str, int]) -> bool:
    """Per class within 1 % or one animal."""
    return all(abs(a[name] - b[name]) <= max(1, 0.01 * max(a[name], b[name])) for name in a)


# --- pure geometry and scale -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height", "size", "overlap"), [(16000, 9000, 3328, 160), (700, 500, 256, 40)])
def test_window_cores_tile_the_raster_once_and_hold_whole_animals(width, height, size, overlap):
    windows = window_grid(width, height, size, overlap)
    covered = np.zeros((height // 4 + 1, width // 4 + 1), dtype=int)  # every 4th pixel's centre
    ys, xs = np.mgrid[0:height:4, 0:width:4] + 0.5
    points = np.column_stack([xs.ravel(), ys.ravel(), xs.ravel(), ys.ravel()])
    for window in windows:
        assert window.col + window.width <= width and window.row + window.height <= height
        covered[: ys.shape[0], : xs.shape[1]] += centres_in(points, window.core).reshape(ys.shape)
        # an animal up to `overlap` long centred in the core lies wholly inside the window
        x1, y1, x2, y2 = window.core
        assert x1 - overlap / 2 >= window.col or window.col == 0
        assert x2 + overlap / 2 <= window.col + window.width or window.col + window.width == width
        assert y1 - overlap / 2 >= window.row or window.row == 0
    assert (covered[: ys.shape[0], : xs.shape[1]] == 1).all()


def test_scale_from_the_gsd_and_a_too_coarse_gsd_names_both_numbers():
    assert scale_from_gsd(0.03, 2.4, 80) == pytest.approx(1.0)
    assert scale_from_gsd(0.06, 2.4, 80) == pytest.approx(0.5)
    assert scale_from_gsd(0.025, 2.5, 100) == pytest.approx(1.0)  # another version's reference: 100 px at scale 1
    with pytest.raises(ValueError, match=r"100 cm/pixel.*2\.4 m.*under the 5 px"):
        scale_from_gsd(1.0, 2.4, 80)
    assert window_px(6144, 0.25, 0.5) == 3072  # a coarse raster is enlarged for the model: a smaller window


def test_gsd_of_a_geographic_crs_is_converted_to_metres(tmp_path):
    lat = 56.84
    deg_lat = 0.03 / 111_360.0  # ~ metres per degree of latitude at 57°N (WGS 84 meridian arc)
    deg_lon = 0.03 / (111_412.84 * np.cos(np.radians(lat)))  # metres per degree of longitude at that latitude
    transform = rasterio.transform.from_origin(-159.0, lat, deg_lon, deg_lat)
    gsd = ground_sample_distance("EPSG:4326", transform, 1000, 1000)
    assert gsd == pytest.approx(0.03, rel=0.01)
    utm = rasterio.transform.from_origin(E0, N0, 0.03, 0.03)
    assert ground_sample_distance(SYNTHETIC_CRS, utm, 10, 10) == pytest.approx(0.03)
    feet = rasterio.transform.from_origin(1_000_000, 500_000, 0.1, 0.1)  # NAD83 / Alaska zone 4 (US survey feet)
    assert ground_sample_distance("EPSG:26734", feet, 10, 10) == pytest.approx(0.1 * 0.3048006, rel=1e-5)


def test_a_missing_geo_extra_is_one_line_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rasterio", None)
    with pytest.raises(DetectorError, match=r"pip install 'sealion-counter\[geo\]'") as caught:
        require_geo()
    assert "\n" not in str(caught.value)


def _sites_file(path: Path) -> Path:
    """Two UTM 4N polygons (declared by a legacy crs member) over the synthetic placement; they overlap a little."""
    west = [[E0, N0 - 100], [E0 + 75, N0 - 100], [E0 + 75, N0], [E0, N0], [E0, N0 - 100]]
    east = [[E0 + 70, N0 - 50], [E0 + 120, N0 - 50], [E0 + 120, N0], [E0 + 70, N0], [E0 + 70, N0 - 50]]
    features = [
        {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for name, ring in (("west rocks", west), ("east beach", east))
    ]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32604"}}
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}))
    return path


def test_sites_assign_each_point_to_its_first_polygon_in_the_files_crs(tmp_path):
    sites = load_sites(_sites_file(tmp_path / "sites.geojson"))
    lon, lat = Transformer.from_crs(SYNTHETIC_CRS, "OGC:CRS84", always_xy=True).transform(
        np.array([E0 + 10, E0 + 72, E0 + 100, E0 + 100]), np.array([N0 - 10, N0 - 10, N0 - 10, N0 - 80])
    )
    assert sites.assign(lon, lat, "OGC:CRS84") == ["west rocks", "west rocks", "east beach", None]
    triangle = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    unnamed = {"type": "Feature", "properties": {}, "geometry": triangle}
    (tmp_path / "bad.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [unnamed]}))
    with pytest.raises(DetectorError, match="no 'name' property"):
        load_sites(tmp_path / "bad.geojson")


def _record(sites: list[str | None] | None, crs: str | None = SYNTHETIC_CRS) -> PhotoRecord:
    boxes = np.array([[10, 10, 90, 50], [200, 200, 260, 240], [400, 40, 480, 90]], dtype=np.float32)
    result = CountResult(boxes, np.array([2, 4, 2]), np.array([0.9, 0.8, 0.7]), SEA_LION_CLASSES, (500, 300))
    geo = {"crs": crs, "transform": [0.03, 0, E0, 0, -0.03, N0], "gsd_m": 0.03, "sites": sites}
    return PhotoRecord(file="m.tif", result=result, folder="flight-1", geo=geo)


def test_summary_totals_per_site_when_sites_are_given(tmp_path):
    path = write_summary_csv(tmp_path / "summary.csv", [_record(["A", None, "A"]), _record(["B", "B", None])])
    rows = list(csv.DictReader(path.open()))
    assert [(r["folder"], r["site"], r["adult_females"], r["pups"], r["total"]) for r in rows] == [
        ("flight-1", "A", "2", "0", "2"), ("flight-1", "B", "1", "1", "2"), ("flight-1", "-", "1", "1", "2"),
    ]  # fmt: skip
    plain = list(csv.DictReader(write_summary_csv(tmp_path / "plain.csv", [_record(None)]).open()))
    assert "site" not in plain[0] and plain[0]["total"] == "3"


def test_geojson_refuses_a_raster_without_crs_and_round_trips_a_record():
    with pytest.raises(DetectorError, match="no georeference"):
        feature_collection([_record(None, crs=None)])
    collection = feature_collection([_record(["A", None, "A"])])
    assert [f["properties"]["site"] for f in collection["features"]] == ["A", None, "A"]
    record = _record(["A", None, "A"])
    assert PhotoRecord.from_dict(json.loads(json.dumps(record.to_dict()))).geo == record.geo


def test_survey_totals_sample_and_estimate_per_site(tmp_path):
    """A run of rasters counted with --sites: sample and estimate stratify and total per site (one unit per raster and
    site, ``<file>#<site>``); every unit reviewed with one more adult female than the model found."""
    from detector.cli import main
    from detector.review.formats import dots_csv
    from detector.review.record import PhotoAnnotations
    from detector.survey.runs import RunDirectory

    run = RunDirectory.open(tmp_path / "run", {"model": {"version": "v2", "sha256": "ab" * 32}})
    layouts = [["A", None, "A"], ["B", "B", None], ["A", "B", "A"], ["A", "A", None]]
    for number, sites in enumerate(layouts):
        record = _record(sites)
        run.add(PhotoRecord(f"/survey/m{number}.tif", record.result, "flight-1", f"{number:064d}", geo=record.geo))
    run.export(*run.outcome())
    summary = {r["site"]: r for r in csv.DictReader((run.folder / "summary.csv").open())}
    assert {site: summary[site]["total"] for site in summary} == {"A": "6", "B": "3", "-": "3"}
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main(["sample", str(run.folder), "--photos", "8", "--strata", "1"]) == 0
    rows = list(csv.DictReader((run.folder / "review-sample.csv").open()))
    assert {row["folder"] for row in rows} == {"A", "B", "-"} and len(rows) == 8  # every unit: 3 + 2 + 3
    assert all(row["file"].endswith("#" + row["folder"]) for row in rows)
    units = {row["file"]: row for row in rows}
    reviews = []
    for file in units:
        site, record = file.rsplit("#", 1)[1], _record(layouts[int(file.split("/m")[1][0])])
        keep = np.array([(s or "-") == site for s in record.geo["sites"]])
        class_id = np.append(record.result.class_id[keep], 2)  # the reviewer finds one more adult female
        xyxy = np.vstack([record.result.xyxy[keep], [[1, 1, 9, 9]]])
        reviews.append((PhotoAnnotations(Path(file).name, xyxy, class_id, image_size=(500, 300)), 1.0))
    (tmp_path / "dots.csv").write_text(dots_csv(reviews))
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        assert main(["estimate", str(run.folder), "--reviews", str(tmp_path / "dots.csv")]) == 0, err.getvalue()
    estimate = {(r["folder"], r["class"]): r for r in csv.DictReader((run.folder / "estimate.csv").open())}
    females_per_site = {"A": 5 + 3, "B": 1 + 2, "-": 2 + 3}  # the model's adult females + one per unit
    for site, females in females_per_site.items():
        assert float(estimate[(site, "adult_females")]["estimate"]) == females


# --- real pixels (NOAA sample) -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_model():
    from detector import Detector
    from detector.settings import ModelSettings

    return Detector.load(ModelSettings(device="cpu"))


@pytest.fixture(scope="module")
def photo5(request) -> np.ndarray:
    from tests.helpers import NO_SHARED_DATA, SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(NO_SHARED_DATA)
    return photo("5", SHARED_DATA)


def test_a_photo_as_geotiff_counts_as_the_same_pixels_as_a_photo(default_model, photo5, tmp_path):
    tif = write_geotiff(tmp_path / "5.tif", photo5)
    counted = count_raster(default_model, tif)
    as_photo = default_model.count(photo5, photo_scale=1.0)
    assert counted.scale.source == "gsd" and counted.scale.gsd_m == pytest.approx(SYNTHETIC_GSD_M)
    assert counted.scale.value == pytest.approx(1.0) and counted.result.scale_source == "gsd"
    assert within(counted.result.counts, as_photo.counts), (counted.result.counts, as_photo.counts)
    from tests.helpers import SHARED_DATA  # the JPEG file itself: decoded at half size by the photo path (draft)

    as_jpeg = default_model.count(SHARED_DATA / "fullres-raw" / "5.jpg", photo_scale=1.0)
    assert within(counted.result.counts, as_jpeg.counts), (counted.result.counts, as_jpeg.counts)
    assert counted.result.total > 20
    # every animal inside the raster's footprint (checked in UTM with shapely, not by the code under test)
    footprint = box(E0, N0 - photo5.shape[0] * 0.03, E0 + photo5.shape[1] * 0.03, N0)
    xs = (counted.result.xyxy[:, 0] + counted.result.xyxy[:, 2]) / 2
    ys = (counted.result.xyxy[:, 1] + counted.result.xyxy[:, 3]) / 2
    east, north = TO_UTM.transform(*to_lonlat(counted.geo_dict(), xs, ys))
    assert shapely.contains_xy(footprint, east, north).all()


def test_gsd_scale_equals_the_female_length_scale_on_the_same_raster(default_model, photo5, tmp_path):
    half = crop(photo5)[::2, ::2].copy()  # 1664 px: the same ground at 6 cm, an adult female ~40 px
    tif = write_geotiff(tmp_path / "half.tif", half, gsd_m=0.06)
    by_gsd = count_raster(default_model, tif)
    by_length = count_raster(default_model, tif, CountOptions(photo_scale=scale_from_female_length(40)))
    assert by_gsd.scale.value == pytest.approx(0.5) and by_length.scale.source == "manual"
    assert by_length.scale.from_gsd == pytest.approx(by_gsd.scale.value)
    assert by_gsd.result.counts == by_length.result.counts
    lat0 = 56.84  # the same pixels in WGS 84 degrees (a geographic CRS): the GSD, hence the scale, in metres
    degrees = (0.06 / (111_412.84 * np.cos(np.radians(lat0))), 0.06 / 111_360.0)
    geographic = tmp_path / "half-4326.tif"
    with rasterio.open(tif) as src:
        profile = {**src.profile, "crs": "EPSG:4326",
                   "transform": rasterio.transform.from_origin(-159.0, lat0, *degrees)}  # fmt: skip
        with rasterio.open(geographic, "w", **profile) as dst:
            dst.write(src.read())
    assert count_raster(default_model, geographic).scale.value == pytest.approx(0.5, rel=0.01)


@pytest.mark.parametrize("how", ["alpha", "nodata"])
def test_nodata_and_alpha_are_honoured_and_empty_windows_never_run(default_model, photo5, tmp_path, how):
    pixels = crop(photo5)[::2, ::2].copy()  # 1664 px at 6 cm
    height, width = pixels.shape[:2]
    valid = np.ones((height, width), dtype=bool)
    valid[:, : width // 2] = False
    path = tmp_path / f"{how}.tif"
    profile = {"driver": "GTiff", "width": width, "height": height, "dtype": "uint8", "crs": SYNTHETIC_CRS,
               "transform": rasterio.transform.from_origin(E0, N0, 0.06, 0.06)}  # fmt: skip
    bands = np.moveaxis(pixels, -1, 0).copy()
    if how == "alpha":
        with rasterio.open(path, "w", count=4, photometric="RGB", alpha="YES", **profile) as dst:
            dst.write(np.concatenate([bands, (valid * 255).astype(np.uint8)[None]]))
    else:
        bands[:, ~valid] = 0
        with rasterio.open(path, "w", count=3, nodata=0, **profile) as dst:
            dst.write(bands)
    counted = count_raster(default_model, path, geo=GeoOptions(window_px=600))
    assert counted.windows_skipped >= 2  # the left columns of windows hold no valid pixel
    assert counted.windows_skipped + len(counted.per_window) == counted.windows
    centres_x = (counted.result.xyxy[:, 0] + counted.result.xyxy[:, 2]) / 2
    assert (centres_x >= width // 2).all() and counted.result.total > 0


def test_a_large_tiff_without_crs_counts_in_pixels_and_refuses_geojson(default_model, photo5, tmp_path, monkeypatch):
    from detector.counting import images

    pixels = crop(photo5, 3000)[::2, ::2].copy()  # 1500 px: not a survey photo's size, so auto cannot guess
    tif = write_geotiff(tmp_path / "plain.tif", pixels, crs=None)
    monkeypatch.setattr(images, "MAX_PIXELS", 2_000_000)  # "large": more than one photo may decode whole
    assert is_raster_path(tif)
    with pytest.raises(DetectorError, match="no georeference.*--female-length"):
        count_raster(default_model, tif)
    counted = count_raster(default_model, tif, CountOptions(photo_scale=scale_from_female_length(40)))
    assert counted.crs_wkt is None and counted.result.scale_source == "manual" and counted.result.total > 0
    assert counted.windows == 4  # windows of at most 1414 px: none larger than a photo may be decoded
    boxes = counted.result.xyxy
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 1500).all() and (boxes[:, 3] <= 1500).all()
    with pytest.raises(DetectorError, match="no georeference"):
        feature_collection([PhotoRecord("plain.tif", counted.result, geo=counted.geo_dict())])


def test_cli_run_writes_geojson_animals_csv_and_site_totals(photo5, tmp_path):
    """sealion-count over a folder of GeoTIFFs into a run, with sites: the GeoJSON opens in GDAL (pyogrio), every
    animal is inside the footprint, and every site property agrees with shapely's point-in-polygon."""
    pyogrio = pytest.importorskip("pyogrio")
    folder = tmp_path / "survey"
    folder.mkdir()
    pixels = crop(photo5)
    write_geotiff(folder / "5.tif", pixels)
    sites_path = _sites_file(tmp_path / "sites.geojson")
    env = {**os.environ, "SEALION_DEVICE": "cpu"}
    out, animals = tmp_path / "animals.geojson", tmp_path / "animals.csv"
    done = subprocess.run(
        [sys.executable, "-m", "detector", "count", str(folder), "--run", str(tmp_path / "run"), "--sites",
         str(sites_path), "--out", str(out), "--animals-csv", str(animals), "-q"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta, _, geometry, field_data = pyogrio.raw.read(out)
    assert meta["crs"] == "EPSG:4326" and meta["geometry_type"] == "Point"
    fields = dict(zip(meta["fields"], field_data, strict=True))
    points = shapely.from_wkb(geometry)
    east, north = TO_UTM.transform(shapely.get_x(points), shapely.get_y(points))
    footprint = box(E0, N0 - pixels.shape[0] * 0.03, E0 + pixels.shape[1] * 0.03, N0)
    assert len(points) > 10 and shapely.contains_xy(footprint, east, north).all()
    polygons = {f["properties"]["name"]: shape(f["geometry"]) for f in json.loads(sites_path.read_text())["features"]}
    for x, y, site in zip(east, north, fields["site"], strict=True):
        inside = [name for name, polygon in polygons.items() if polygon.buffer(0.01).contains(Point(x, y))]
        if site is None:
            assert not any(polygon.buffer(-0.01).contains(Point(x, y)) for polygon in polygons.values())
        else:
            assert site in inside
    assert set(fields["site"]) >= {"west rocks", "east beach"}
    summary = {(r["site"]): r for r in csv.DictReader((tmp_path / "run" / "summary.csv").open())}
    for site in ("west rocks", "east beach"):
        assert int(summary[site]["total"]) == sum(1 for s in fields["site"] if s == site)
    rows = list(csv.DictReader(animals.open()))
    assert len(rows) == len(points) and all(row["lon"] and row["lat"] for row in rows)
    record = json.loads((tmp_path / "run" / "results.jsonl").read_text().splitlines()[0])
    assert record["geo"]["gsd_m"] == pytest.approx(0.03) and record["geo"]["scale_source"] == "gsd"
    assert record["geo"]["reference_length_m"] == REFERENCE_LENGTH_M
    # resumed with other sites: nothing is counted again, and the totals follow the new polygons
    renamed = tmp_path / "renamed.geojson"
    renamed.write_text(sites_path.read_text().replace("west rocks", "west").replace("east beach", "east"))
    again = subprocess.run(
        [sys.executable, "-m", "detector", "count", str(folder), "--run", str(tmp_path / "run"), "--sites",
         str(renamed), "-q"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0 and "all 1 photos already counted" in again.stderr, again.stderr  # model not loaded
    resumed = {r["site"]: r["total"] for r in csv.DictReader((tmp_path / "run" / "summary.csv").open())}
    assert resumed["west"] == summary["west rocks"]["total"] and resumed["east"] == summary["east beach"]["total"]


def test_the_app_counts_a_geotiff_upload_and_offers_its_geojson(default_model, photo5, tmp_path):
    from sealion_app.geo import write_geojson_file
    from sealion_app.service import count_batch

    tif = write_geotiff(tmp_path / "colony.tif", crop(photo5, 2000))
    jpeg = REPO_ROOT / "examples" / sorted(p.name for p in (REPO_ROOT / "examples").glob("*.jpg"))[0]
    (tmp_path / "out").mkdir()
    outcome = count_batch(default_model, [str(jpeg), str(tif)], CountOptions(), out_dir=tmp_path / "out")
    assert [r.file for r in outcome.records] == [jpeg.name, "colony.tif"] and not outcome.failures
    raster = outcome.records[1]
    assert raster.result.scale_source == "gsd" and raster.result.total > 0
    summary = outcome.summary()
    assert len(summary["animals_geojson"]["features"]) == raster.result.total  # the API's JSON carries it
    assert {f["properties"]["source"] for f in summary["animals_geojson"]["features"]} == {"colony.tif"}
    download = write_geojson_file(summary["animals_geojson"], tmp_path / "out")  # the page's file beside the CSV
    assert json.loads(Path(download).read_text()) == summary["animals_geojson"]
    assert len(outcome.thumbnails) == 2 and outcome.csv_path.is_file()
    alone = count_batch(default_model, [str(jpeg)], CountOptions(), out_dir=tmp_path / "out")
    assert alone.geojson is None and "animals_geojson" not in alone.summary()


@pytest.mark.slow
def test_a_16000_px_mosaic_counts_in_bounded_memory_and_each_copy_as_its_photo(photo5, tmp_path):
    from benchmarks.geo_mosaic import measure
    from tests.helpers import SHARED_DATA

    result = measure(16_000, tmp_path, SHARED_DATA)
    assert result["peak_rss_mib"] < 2048, result["peak_rss_mib"]
    assert result["windows_skipped"] >= 1
    for copy in result["copies"]:
        assert copy["window_found"] == copy["alone"], copy
        assert within(copy["in_footprint"], copy["alone"]), copy
