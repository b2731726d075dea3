"""A GeoTIFF's scale per model version (issue #35): the reference class's length on the ground in metres is the
version's (``reference_length_m`` in its manifest entry), and its length in pixels is the version's reference length
in px. The sea lion versions keep the cited 2.4 m adult female and 80 px; the shipped elephant-seal version names no
metres, so a raster's pixel size gives it no scale until the user gives one (``--reference-length-m``).

Real pixels and real models: a shipped NOAA example and a 500 px elephant-seal tile (tests/data/pinnipeds-tiny),
written as GeoTIFFs with a synthetic placement (``benchmarks.geo_mosaic.write_geotiff``), counted by the shipped
sea lion default and the shipped ``elephant-seals-v1``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rasterio", reason="the geo extra: pip install 'sealion-counter[geo]'")

from benchmarks.geo_mosaic import write_geotiff  # noqa: E402
from detector.classes import ADULT_FEMALE_LENGTH_M, SEA_LION_REFERENCE, ScaleReference  # noqa: E402
from detector.counting.images import load_image  # noqa: E402
from detector.errors import DetectorError, ModelResolutionError  # noqa: E402
from detector.geo.raster import GeoOptions, choose_raster_scale, count_raster  # noqa: E402
from detector.geo.scale import overlap_px, window_overlap_px  # noqa: E402
from detector.settings import CountOptions, ModelSettings  # noqa: E402
from detector.versions.manifest import ModelVersion, load_manifest, version_to_dict  # noqa: E402
from tests.helpers import REPO_ROOT  # noqa: E402
from tests.test_totals import cli  # noqa: E402
from tests.test_version_classes import TILE, seal_manifest  # noqa: E402

SEALS = "elephant-seals-v1"
COW_PX = 100.0  # elephant-seals-v1's reference_length_px (the shipped manifest)
SPARSE = REPO_ROOT / "examples" / "noaa_train_6.jpg"  # 1248x832: a survey original downsampled 4x


@pytest.fixture(scope="module")
def sea_lions():
    from detector import Detector

    return Detector.load(ModelSettings(device="cpu"), warmup=False)


@pytest.fixture(scope="module")
def seals():
    from detector import Detector

    return Detector.load(ModelSettings(version=SEALS, device="cpu"), warmup=False)


@pytest.fixture(scope="module")
def seal_tile():
    return load_image(TILE)


def test_the_metres_are_a_property_of_the_version_and_only_the_sea_lions_have_a_default(tmp_path):
    product = load_manifest()
    default = product.get()
    assert default.scale_reference == SEA_LION_REFERENCE and default.scale_reference.length_m == 2.4
    assert ADULT_FEMALE_LENGTH_M == 2.4 and "reference_length_m" not in version_to_dict(default)  # entries as before
    seals = product.get(SEALS).scale_reference
    assert (seals.class_name, seals.length_px, seals.length_m) == ("cow", COW_PX, None)  # no number is invented
    # A version that names its metres: kept through its manifest entry and its model card.
    path = seal_manifest(tmp_path / "weights")
    data = yaml.safe_load(path.read_text())
    data["versions"]["es"]["reference_length_m"] = 2.5
    path.write_text(yaml.safe_dump(data))
    es = load_manifest(path).get("es")
    assert es.scale_reference.length_m == 2.5 and version_to_dict(es)["reference_length_m"] == 2.5
    assert ModelVersion.from_card(es.to_card(), es.repo_id, "es").scale_reference.length_m == 2.5
    for bad, message in ((-1, "must be a positive number of metres"), (2.5, "name that class with reference_class")):
        entry = dict(data["versions"]["es"], reference_length_m=bad)
        if bad == 2.5:  # metres without a reference class: whose length would it be?
            entry = {k: v for k, v in entry.items() if k not in ("reference_class", "reference_length_px")}
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"versions": {"es": entry}}))
        with pytest.raises(ModelResolutionError, match=message):
            load_manifest(tmp_path / "bad.yaml")


def test_the_gsd_scale_uses_the_versions_metres_and_its_reference_px():
    sea_lion = choose_raster_scale(CountOptions(), 0.03, (1000, 1000), SEA_LION_REFERENCE, None, "v4")
    assert (sea_lion.value, sea_lion.source, sea_lion.reference_length_m) == (pytest.approx(1.0), "gsd", 2.4)
    assert sea_lion.to_dict() == {
        "scale": 1.0, "scale_source": "gsd", "gsd_m": 0.03, "reference_length_m": 2.4, "scale_from_gsd": 1.0,
    }  # fmt: skip
    cows = ScaleReference("cow", COW_PX, (500,))
    given = choose_raster_scale(CountOptions(), 0.025, (500, 500), cows, 2.5, SEALS)
    assert given.value == pytest.approx(1.0)  # 2.5 m / 2.5 cm = 100 px = a cow at scale 1 (80 px would give 1.25)
    assert given.reference_px == pytest.approx(COW_PX)
    own = choose_raster_scale(CountOptions(), 0.05, (500, 500), ScaleReference("cow", COW_PX, (500,), 3.0), None)
    assert own.value == pytest.approx(0.6) and own.reference_length_m == 3.0  # a version's own metres
    with pytest.raises(DetectorError, match=r"model version elephant-seals-v1 names no length in metres .*cows"):
        choose_raster_scale(CountOptions(), 0.025, (500, 500), cows, None, SEALS)
    manual = choose_raster_scale(CountOptions(reference_length=50), 0.025, (500, 500), cows, None, SEALS)
    assert (manual.value, manual.source, manual.reference_length_m) == (0.5, "manual", None)
    unnamed = ScaleReference(None, None, ())
    with pytest.raises(DetectorError, match=r"names no reference class.*--photo-scale"):
        choose_raster_scale(CountOptions(), 0.025, (500, 500), unnamed, 2.5, "local")


def test_a_sea_lion_geotiff_counts_as_before(sea_lions, tmp_path):
    """The default version: 2.4 m and 80 px, so a 4x copy of a survey original at 12 cm is photo scale 0.25, counted
    exactly as the same pixels as a photo at that scale; the record says 2.4 m, the overlap is two 20 px females."""
    pixels = load_image(SPARSE)
    tif = write_geotiff(tmp_path / "sparse.tif", pixels, gsd_m=0.12)
    counted = count_raster(sea_lions, tif)
    assert (counted.scale.value, counted.scale.source) == (pytest.approx(0.25), "gsd")
    geo = counted.geo_dict()
    assert (geo["reference_length_m"], geo["overlap_px"], counted.windows) == (2.4, 40, 1)
    assert counted.result.counts == sea_lions.count(pixels, photo_scale=0.25).counts
    assert counted.result.total > 20


def test_a_seal_geotiff_without_metres_stops_naming_the_version_and_the_fix(seals, seal_tile, tmp_path):
    tif = write_geotiff(tmp_path / "seals.tif", seal_tile, gsd_m=0.025)
    with pytest.raises(DetectorError) as caught:
        count_raster(seals, tif)
    message = str(caught.value)
    assert message.startswith("seals.tif: model version elephant-seals-v1 names no length in metres"), message
    assert "--reference-length-m M" in message and "add reference_length_m" in message
    assert "2.4" not in message and "female" not in message
    done = cli("count", tif, "--model-version", SEALS, "--device", "cpu", "--out", tmp_path / "counts.json")
    assert done.returncode == 2 and not (tmp_path / "counts.json").exists()
    assert "seals.tif: model version elephant-seals-v1 names no length in metres" in done.stderr, done.stderr
    assert "--reference-length-m M" in done.stderr


def test_reference_length_m_gives_a_seal_geotiff_its_scale_by_the_cow(seals, seal_tile, tmp_path):
    """With ``--reference-length-m``: 2.5 m at 2.5 cm is 100 px, the elephant-seal version's cow at photo scale 1, so
    the 500 px tile counts as the tile itself does (auto: a whole frame of the seal data)."""
    tif = write_geotiff(tmp_path / "seals.tif", seal_tile, gsd_m=0.025)
    counted = count_raster(seals, tif, geo=GeoOptions(reference_length_m=2.5))
    assert (counted.scale.value, counted.scale.source) == (pytest.approx(1.0), "gsd")
    assert counted.geo_dict()["overlap_px"] == 2 * COW_PX  # two cows, not two 80 px sea lion females
    as_tile = seals.count(TILE)
    assert as_tile.photo_scale == 1.0 and counted.result.counts == as_tile.counts
    assert set(counted.result.counts) == {"bull", "cow", "pup"} and counted.result.total > 0
    out = tmp_path / "counts.json"
    done = cli("count", tif, "--model-version", SEALS, "--device", "cpu", "--reference-length-m", 2.5, "--out", out)
    assert done.returncode == 0, done.stderr
    (record,) = json.loads(out.read_text())["results"]
    assert (record["geo"]["reference_length_m"], record["geo"]["scale_source"]) == (2.5, "gsd")
    assert record["photo_scale"] == pytest.approx(1.0) and record["counts"] == as_tile.counts
    # A cow measured in the raster sets the scale instead: no metres needed, and none recorded.
    measured = cli("count", tif, "--model-version", SEALS, "--device", "cpu", "--reference-length", 50, "--out", out)
    assert measured.returncode == 0, measured.stderr
    (record,) = json.loads(Path(out).read_text())["results"]
    assert (record["photo_scale"], record["geo"]["scale_source"], record["geo"]["reference_length_m"]) == (
        0.5, "manual", None,
    )  # fmt: skip


def test_the_window_overlap_is_two_reference_animals_or_one_model_tile():
    """Two of the version's reference animals at the raster's scale (sea lions: two 80 px adult females; a 100 px cow
    version: two cows); a version with no reference length gets one of the model's tiles (imgsz at its ground
    scale), never a sea lion's length."""
    assert window_overlap_px(0.25, SEA_LION_REFERENCE, 320, 0.5) == overlap_px(0.25, 80) == 40
    assert window_overlap_px(1.0, ScaleReference("cow", COW_PX, (500,)), 224, 0.448) == 200
    assert window_overlap_px(1.0, ScaleReference(None, None, ()), 224, 0.448) == 500  # 224 px / 0.448
    assert window_overlap_px(0.5, ScaleReference(None, None, ()), 224, 0.448) == 250


def test_a_geotiff_counted_by_weights_without_a_reference_overlaps_by_a_model_tile(seal_tile, tmp_path):
    """The shipped seal weights as a file no manifest in use lists (no reference class), on a GeoTIFF at a given
    photo scale: the windows overlap by one of the model's tiles (224 px at ground scale 0.448: 500 px at photo
    scale 1), not by two sea lion females, and the raster counts as the tile does."""
    from detector import Detector
    from tests.test_version_classes import seal_manifest

    manifest = seal_manifest(tmp_path / "weights")
    weights = tmp_path / "my-seals.pt"
    weights.write_bytes((REPO_ROOT / "weights" / "elephant-seals-yolov5n-elephant-seals-v1.pt").read_bytes())
    own = Detector.load(ModelSettings(weights=str(weights), manifest=str(manifest), device="cpu"), warmup=False)
    assert own.info.scale_reference == ScaleReference(None, None, ()) and (own.imgsz, own.ground_scale) == (224, 0.448)
    tif = write_geotiff(tmp_path / "seals.tif", seal_tile, gsd_m=0.025)
    counted = count_raster(own, tif, CountOptions(photo_scale=1.0))
    assert counted.geo_dict()["overlap_px"] == 500 and counted.windows == 1
    assert counted.result.counts == own.count(TILE, photo_scale=1.0).counts and counted.result.total > 0
