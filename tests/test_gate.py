"""The tile gate: its pure geometry, its settings, and the shipped model's counts with and without it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import gate_recall
from detector import Detector
from detector.cli import build_parser
from detector.counting.gate import (
    DEFAULT_GATE_SETTINGS,
    GateSettings,
    TileGate,
    coarse_size,
    margin_in_work_pixels,
    tiles_to_grow,
    tiles_touched,
)
from detector.counting.pipeline import SlicedCount
from detector.counting.scale import SEA_LION_REFERENCE, ScaleReference
from detector.counting.slicing import tile_grid
from detector.errors import DetectorError
from detector.settings import DEFAULT_GATE, CountOptions, ModelSettings, gate_arg
from detector.versions.manifest import load_manifest
from detector.versions.runtimes import counts_agree
from tests.helpers import NO_SHARED_DATA, REPO_ROOT, SHARED_DATA

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.jpg"))
FULLRES = SHARED_DATA / "fullres-raw" / "44.jpg"  # a survey original: 47 animals on rock, water around
GATE_RECALL = REPO_ROOT / "benchmarks" / "results" / "gate_recall.json"


def test_a_box_marks_the_tiles_it_reaches_with_its_margin():
    tiles = tile_grid(1000, 320, 320, 0.2)  # four tiles in a row, starts 0, 227, 453, 680
    assert tiles[:, 0].tolist() == [0, 227, 453, 680]
    box = np.array([[100, 100, 150, 150]])
    assert tiles_touched(tiles, box, margin=0).tolist() == [True, False, False, False]
    # a pup just beyond the box's edge would sit in the next tile: the margin reaches it
    assert tiles_touched(tiles, box, margin=80).tolist() == [True, True, False, False]
    seam = np.array([[440, 10, 470, 40]])  # an animal across the seam of tiles 2 and 3 keeps both
    assert tiles_touched(tiles, seam, margin=0).tolist() == [False, True, True, False]
    assert not tiles_touched(tiles, np.zeros((0, 4)), margin=80).any()  # nothing found: every tile skipped


def test_a_box_that_only_touches_an_edge_does_not_mark_the_tile():
    tiles = np.array([[0, 0, 100, 100], [100, 0, 200, 100]])
    assert tiles_touched(tiles, np.array([[50, 10, 100, 20]]), margin=0).tolist() == [True, False]


def test_growing_reaches_only_the_tiles_not_yet_run():
    tiles = tile_grid(1000, 320, 320, 0.2)  # starts 0, 227, 453, 680
    ran = np.array([True, False, False, False])
    near_the_edge = np.array([[290, 100, 315, 125]])  # found in tile 0, inside tile 1 too
    assert tiles_to_grow(tiles, ran, near_the_edge, margin=0).tolist() == [False, True, False, False]
    assert tiles_to_grow(tiles, ran, near_the_edge, margin=200).tolist() == [False, True, True, False]
    assert not tiles_to_grow(tiles, np.ones(4, bool), near_the_edge, margin=200).any()  # all run: nothing to grow


def test_sizes_and_margins_follow_the_model_scale():
    assert coarse_size(2808, 1872, 0.5) == (1404, 936)
    settings = GateSettings(margin_px=120)
    assert margin_in_work_pixels(settings, 0.5, SEA_LION_REFERENCE) == 60  # a survey original's 120 px at scale 0.5


def test_the_margin_is_in_lengths_of_the_versions_reference_animal():
    """Sea lions keep the margin the gate was benchmarked with (1.5 adult females: 120 px of a survey original); a
    seal-like version with a 100 px cow gets 1.5 cows; a version with no reference length grows each box by 1.5 of
    its own longer side, not by a sea lion's."""
    assert DEFAULT_GATE_SETTINGS.margin_for(SEA_LION_REFERENCE) == 1.5 * 80 == 120
    assert margin_in_work_pixels(DEFAULT_GATE_SETTINGS, 0.5, SEA_LION_REFERENCE) == 60
    cows = ScaleReference("cow", 100.0, (500,))
    assert DEFAULT_GATE_SETTINGS.margin_for(cows) == 150
    assert margin_in_work_pixels(DEFAULT_GATE_SETTINGS, 0.448, cows) == pytest.approx(67.2)
    assert GateSettings(margin_px=120).margin_for(cows) == 120  # a fixed margin stays fixed
    assert GateSettings(margin_lengths=2).margin_for(cows) == 200
    unnamed = TileGate(lambda images: [], 0.448, ScaleReference(None, None, ()))
    assert DEFAULT_GATE_SETTINGS.margin_for(unnamed.reference) is None and unnamed.margin is None
    boxes = np.array([[100, 100, 120, 110], [400, 10, 440, 70]])  # 20 px and 60 px long
    assert unnamed.margins(boxes).tolist() == [30, 90]
    tiles = tile_grid(1000, 320, 320, 0.2)  # starts 0, 227, 453, 680
    # the small box, grown by 30 px, stays in its own tile; the large one (x 400-440) grown by 90 px reaches back
    # into the first tile, where grown by the small box's 30 px it would not
    assert tiles_touched(tiles, boxes[:1], unnamed.margins(boxes[:1])).tolist() == [True, False, False, False]
    assert tiles_touched(tiles, boxes[1:], unnamed.margins(boxes[1:])).tolist() == [True, True, True, False]
    assert tiles_touched(tiles, boxes[1:], 30).tolist() == [False, True, True, False]
    assert tiles_touched(tiles, boxes, unnamed.margins(boxes)).tolist() == [True, True, True, False]


def test_the_shipped_seal_version_gates_by_its_cow(shipped):
    """The shipped elephant-seal version's gate margin is 1.5 of its 100 px cows at its ground scale, the sea lion
    default's 1.5 of its 80 px adult females at its own."""
    seals = Detector.load(ModelSettings(version="elephant-seals-v1", device="cpu"), warmup=False)
    reference = seals.info.scale_reference
    assert (reference.class_name, reference.length_px) == ("cow", 100.0)
    gate = seals.pipeline.tile_gate(0.1, CountOptions())
    assert gate.margin == pytest.approx(1.5 * 100 * seals.ground_scale)
    assert shipped.pipeline.tile_gate(0.1, CountOptions()).margin == pytest.approx(1.5 * 80 * shipped.ground_scale)


@pytest.mark.parametrize(
    "values",
    [{"coarse": 1.0}, {"coarse": 0}, {"conf": 1.5}, {"margin_px": -1}, {"margin_lengths": -1}, {"overlap": 1.0}],
)
def test_bad_gate_settings_are_refused_naming_the_setting(values):
    with pytest.raises(DetectorError, match=next(iter(values))):
        GateSettings(**values)


def test_the_gate_setting_reads_on_and_off_and_refuses_the_rest():
    assert gate_arg("on") is True and gate_arg("OFF") is False and gate_arg("true") is True
    with pytest.raises(DetectorError, match="gate must be one of on, off"):
        gate_arg("maybe")
    with pytest.raises(DetectorError, match="gate must be True or False"):
        CountOptions(gate="off")  # a string is not a setting: parse it at the edge
    assert build_parser().parse_args(["count", "x.jpg", "--gate", "off"]).gate == "off"
    assert build_parser().parse_args(["count", "x.jpg"]).gate == ("on" if DEFAULT_GATE else "off")


@pytest.fixture(scope="module")
def shipped() -> Detector:
    return Detector.load(ModelSettings(device="cpu"))


def _detect(detector: Detector, options: CountOptions):
    """The gate's ``detect`` callback: (image, tiles) pairs through the detector's network at the count's thresholds."""
    conf = detector.pipeline.thresholds(options).count
    return lambda images: [found for _, found in detector.pipeline.detect_stream(images, conf, options)]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_gated_counts_hold_to_ungated_ones_on_the_shipped_examples(shipped, example):
    """The examples are 4x-downsampled survey photos, enlarged 2x for the model: the gate leaves such photos alone
    (their coarse view misses isolated animals), so gate on and off count the same."""
    prepared = shipped.prepare(example, CountOptions(photo_scale=0.25))
    assert prepared.factor == 2  # enlarged for the model
    ungated = shipped.count_many([prepared], CountOptions(photo_scale=0.25, gate=False))[0]
    gated = shipped.count_many([prepared], CountOptions(photo_scale=0.25, gate=True))[0]
    assert gated.counts == ungated.counts and counts_agree(ungated.counts, gated.counts)
    assert gated.tiles == ungated.tiles == gated.tiles_run and gated.tiles_skipped == gated.gate_tiles == 0
    row = dict(zip(gated.csv_header(gated.class_names), gated.csv_row(), strict=True))
    assert (row["tiles_run"], row["tiles_skipped"]) == (gated.tiles, 0)


def test_the_gate_skips_water_on_a_sparse_example_when_allowed_to(shipped):
    """Allowed to gate the enlarged sparse example (45 animals on two rocks, water and scrub around), the coarse
    pass keeps the tiles near the animals and skips others."""
    prepared = shipped.prepare(REPO_ROOT / "examples" / "noaa_train_6.jpg", CountOptions(photo_scale=0.25))
    grid = tile_grid(prepared.work.shape[1], prepared.work.shape[0], prepared.tile_size, 0.2)
    allowed = SlicedCount(shipped.network.predict, shipped.info, shipped.device, GateSettings(max_enlargement=2))
    options = CountOptions()
    (keep,), (coarse,) = allowed.tile_gate(allowed.thresholds(options).gate, options).coarse_pass([prepared], [grid])
    assert 0 < keep.sum() < len(grid) and 0 < coarse < len(grid)
    (found,) = _detect(shipped, CountOptions())([(prepared.work, grid)])
    dense = np.bincount(found.tile_id, minlength=len(grid)) >= 5  # the tiles over the animals' rock
    assert dense.any() and keep[dense].all()


def test_growing_from_one_tile_follows_the_animals_and_merges_like_one_pass(shipped):
    """Seeded with the busiest tile of the sparse example, growing runs the tiles its detections reach until none
    is left, and its detections merge to the same count as one pass over the tiles it ran (tile ids stay apart)."""
    options = CountOptions(photo_scale=0.25)
    prepared = shipped.prepare(REPO_ROOT / "examples" / "noaa_train_6.jpg", options)
    grid = tile_grid(prepared.work.shape[1], prepared.work.shape[0], prepared.tile_size, options.overlap)
    detect = _detect(shipped, options)
    (everything,) = detect([(prepared.work, grid)])
    seed = np.zeros(len(grid), bool)
    seed[np.bincount(everything.tile_id, minlength=len(grid)).argmax()] = True
    (seeded,) = detect([(prepared.work, grid[seed])])
    reference = shipped.info.scale_reference
    found, ran = TileGate(detect, shipped.ground_scale, reference).grow(prepared.work, grid, seed, seeded)
    assert seed.sum() < ran.sum() < len(grid) and ran[seed].all()
    margin = margin_in_work_pixels(GateSettings(), shipped.ground_scale, reference)
    assert not tiles_to_grow(grid, ran, found.xyxy, margin).any()  # grown until no detection reaches a skipped tile
    assert len(found.merge_tiles()) == len(detect([(prepared.work, grid[ran])])[0].merge_tiles())


@pytest.mark.skipif(not FULLRES.is_file(), reason=NO_SHARED_DATA)
def test_the_gate_holds_counts_and_skips_tiles_on_a_full_resolution_photo(shipped):
    prepared = shipped.prepare(FULLRES, CountOptions())
    ungated = shipped.count_many([prepared], CountOptions(gate=False))[0]
    gated = shipped.count_many([prepared], CountOptions(gate=True))[0]
    assert counts_agree(ungated.counts, gated.counts), (gated.counts, ungated.counts)
    assert gated.tiles_skipped > 0 and 0 < gated.gate_tiles < gated.tiles
    assert gated.tiles_run + gated.tiles_skipped == gated.tiles == ungated.tiles_run
    assert gated.to_dict()["tiles_skipped"] == gated.tiles_skipped


def test_the_gate_is_on_by_default_only_where_the_recall_table_says_it_keeps_counts():
    """The gate is on by default only while a committed ``benchmarks.gate_recall`` run of the default model, with
    the gate's present settings, shows it keeps that model's counts (rerun ``python -m benchmarks.gate_recall
    --docs`` after publishing a new default model or changing the gate). Off by default needs no table."""
    assert CountOptions().gate is DEFAULT_GATE
    assert build_parser().parse_args(["count", "x.jpg"]).gate == ("on" if DEFAULT_GATE else "off")
    if not DEFAULT_GATE:
        return  # opt-in: `--gate on` / CountOptions(gate=True) is the user's choice, whatever the table says
    if not GATE_RECALL.is_file():
        pytest.skip(f"{GATE_RECALL} missing: run python -m benchmarks.gate_recall (needs the NOAA sample)")
    recall = json.loads(GATE_RECALL.read_text())
    default = load_manifest().get()
    assert recall["model"]["sha256"] == default.sha256, "gate_recall.json is of another model: rerun it"
    assert recall["summary"]["keeps_counts"] is True, "the gate loses counts on the default model: keep it off"
    settings = gate_recall.gate_settings(DEFAULT_GATE_SETTINGS, default.scale_reference)
    assert recall["gate_settings"] == settings, "gate_recall.json is of other gate settings: rerun it"
    assert "weights" not in recall["model"] and recall["settings"]["count_options"].startswith("calibrated")
