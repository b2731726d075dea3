"""The real app on a free loopback port, called through gradio_client like an API user would."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client, handle_file  # a required dependency: a broken install fails
from gradio_client.exceptions import AppError
from PIL import Image

from detector.counting.uncertainty import CountUncertainty
from detector.versions.manifest import load_manifest
from detector.versions.runtimes import counts_agree
from tests.app_process import answers, start_app
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES, free_port

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.jpg"))
EXAMPLE_FEMALE_PX = 20  # the shipped examples are downsampled 4x: adult females about 20 px


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    running = start_app(tmp_path_factory.mktemp("app"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app.url, verbose=False, download_files=str(Path(app.log_path).parent / "downloads"))


def test_examples_are_shipped():
    assert len(EXAMPLES) >= 3
    for path in EXAMPLES:
        assert Image.open(path).format == "JPEG"


def test_api_lists_the_named_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/count", "/count_data", "/count_batch", "/model_info"} <= set(endpoints)
    names = [p["parameter_name"] for p in endpoints["/count"]["parameters"]]
    assert names == [
        "image", "conf", "iou", "slicing", "tile_size", "female_length_px", "model_version", "runtime", "gate"
    ]  # fmt: skip


def test_count_on_a_shipped_example(client):
    example = EXAMPLES[0]
    annotated, table, result, status = client.predict(
        handle_file(str(example)), 0.25, 0.45, "auto", 0, EXAMPLE_FEMALE_PX, api_name="/count"
    )
    with Image.open(annotated) as image:
        assert image.format == "JPEG"
        assert image.size == Image.open(example).size
    assert list(result["counts"]) == SEA_LION_CLASSES
    assert all(isinstance(n, int) and n >= 0 for n in result["counts"].values())
    assert result["total"] == sum(result["counts"].values()) == len(result["detections"])
    assert result["image_size"] == dict(zip(("width", "height"), Image.open(example).size, strict=True))
    assert result["source"] == example.name
    rows = {row[0]: row[1] for row in table["data"]}
    assert rows == {**{c.replace("_", " "): n for c, n in result["counts"].items()}, "total": result["total"]}
    assert "s on" in status and result["device"] in status


def test_the_lean_endpoint_returns_the_same_result_without_a_photo(client):
    """/count_data: the same inputs as /count, only its JSON result (counts and boxes), no annotated photo."""
    example = handle_file(str(EXAMPLES[1]))
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in endpoints["/count_data"]["parameters"]] == [
        p["parameter_name"] for p in endpoints["/count"]["parameters"]
    ]
    assert len(endpoints["/count_data"]["returns"]) == 1
    full = client.predict(example, 0, 0.45, "auto", 0, EXAMPLE_FEMALE_PX, api_name="/count")[2]
    lean = client.predict(example, 0, 0.45, "auto", 0, EXAMPLE_FEMALE_PX, api_name="/count_data")
    assert lean["counts"] == full["counts"] and lean["detections"] == full["detections"]
    assert lean["model"] == full["model"] and lean["source"] == full["source"]
    with pytest.raises(AppError, match="Send a photo"):
        client.predict(None, api_name="/count_data")


def test_count_honours_threshold(client):
    """A confidence threshold of 0.99 can only keep fewer detections than 0.05."""
    example = handle_file(str(EXAMPLES[-1]))
    low = client.predict(example, 0.05, 0.45, "auto", 0, EXAMPLE_FEMALE_PX, api_name="/count")[2]
    high = client.predict(example, 0.99, 0.45, "auto", 0, EXAMPLE_FEMALE_PX, api_name="/count")[2]
    assert high["total"] <= low["total"]
    assert all(d["confidence"] >= 0.99 for d in high["detections"])
    assert all(d["confidence"] >= 0.05 for d in low["detections"])


def test_model_info_reports_version_and_sha(app, client):
    info = client.predict(api_name="/model_info")
    assert info["sha256"] == app.expected_sha256
    assert info["version"] == app.expected_version  # the manifest default, no overrides
    assert info["source"] in {"shipped", "cache", "hub"}
    assert info["commit"] and len(info["commit"]) == 40
    assert info["class_names"] == SEA_LION_CLASSES
    assert set(info["class_colors"]) == set(SEA_LION_CLASSES)
    assert info["device"]
    assert "path" not in info  # no server paths in API answers


def test_the_runtime_is_chosen_per_request(app, client):
    """``runtime`` (last, optional): torch runs the weights; openvino-f32 runs the export and counts as torch does."""
    example = handle_file(str(EXAMPLES[1]))
    _, _, torch_result, status = client.predict(
        example, 0, 0.45, "auto", 0, EXAMPLE_FEMALE_PX, app.expected_version, "torch", api_name="/count"
    )
    assert torch_result["runtime"] == "torch" and "torch)" in status
    exported = client.predict(
        example, female_length_px=EXAMPLE_FEMALE_PX, runtime="openvino-f32", api_name="/count_data"
    )
    assert exported["runtime"] == "openvino-f32"
    assert counts_agree(torch_result["counts"], exported["counts"]), (torch_result["counts"], exported["counts"])
    assert client.predict(app.expected_version, "torch", api_name="/model_info")["runtime"] == "torch"
    assert client.predict(runtime="openvino-f32", api_name="/model_info")["runtime"] == "openvino-f32"


def test_a_runtime_the_version_lacks_is_refused_by_name(app, client):
    """Refused with the version's runtimes named; the app keeps serving."""
    example = handle_file(str(EXAMPLES[1]))
    lacks = rf"{app.expected_version} has no runtime 'onnx'; choose one of: auto, torch, .*openvino-f32"
    with pytest.raises(AppError, match=lacks):
        client.predict(example, female_length_px=EXAMPLE_FEMALE_PX, runtime="onnx", api_name="/count")
    with pytest.raises(AppError, match="has no runtime 'nonsense'"):
        client.predict(example, runtime="nonsense", api_name="/count_data")
    with pytest.raises(AppError, match=r"v1 has no runtime 'openvino'; choose one of: auto, torch\."):
        client.predict("v1", "openvino", api_name="/model_info")
    result = client.predict(example, female_length_px=EXAMPLE_FEMALE_PX, api_name="/count_data")
    assert list(result["counts"]) == SEA_LION_CLASSES


def rows_of(csv_file: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(Path(csv_file).read_text())))


def test_count_batch_with_one_broken_file(client, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(EXAMPLES[0].read_bytes()[:300])  # a JPEG cut off after its header
    files = [handle_file(str(EXAMPLES[0])), handle_file(str(broken)), handle_file(str(EXAMPLES[1]))]
    table, failures, csv_file, gallery, summary, status = client.predict(
        files, female_length_px=EXAMPLE_FEMALE_PX, api_name="/count_batch"
    )
    assert summary["counted"] == 2 and summary["failed"] == 1
    assert [r["source"] for r in summary["results"]] == [EXAMPLES[0].name, EXAMPLES[1].name]
    for result in summary["results"]:
        assert list(result["counts"]) == SEA_LION_CLASSES
    (failure,) = summary["failures"]
    assert failure["file"] == "broken.jpg"
    assert "broken.jpg" in failure["error"] and ("truncated" in failure["error"] or "damaged" in failure["error"])
    assert [row[0] for row in table["data"]] == [EXAMPLES[0].name, EXAMPLES[1].name, "all 2 photos"]
    errors = CountUncertainty.of(load_manifest().get())  # the default version's own errors, flags and ranges
    flagged = errors.worse_than_mean(SEA_LION_CLASSES)
    assert table["headers"][1:6] == [f"{n} ⚠" if n in flagged else n for n in SEA_LION_CLASSES]
    first = summary["results"][0]["counts"]
    assert table["data"][0][1:6] == [f"{first[n]} ± {errors.photo_error(n, first):.0f}" for n in SEA_LION_CLASSES]
    assert float(rows_of(csv_file)[0]["pups_error"]) == round(errors.photo_error("pups", first), 1)
    assert failures["data"] == [[failure["file"], failure["error"]]]
    assert len(gallery) == 2 and all(Path(item["image"]).is_file() for item in gallery)
    rows = rows_of(csv_file)
    assert [row["file"] for row in rows] == [EXAMPLES[0].name, EXAMPLES[1].name, "broken.jpg"]
    assert rows[2]["error"] and not rows[0]["error"]
    assert int(rows[0]["total"]) == summary["results"][0]["total"]
    assert "2" in status and "1" in status


def test_count_batch_unpacks_a_zip(client, tmp_path):
    archive = tmp_path / "survey.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(EXAMPLES[0], f"day1/{EXAMPLES[0].name}")
        zipped.write(EXAMPLES[1], f"day1/{EXAMPLES[1].name}")
        zipped.writestr("day1/notes.txt", "weather: overcast")
        zipped.writestr("__MACOSX/day1/._x.jpg", "resource fork")
    summary = client.predict([handle_file(str(archive))], female_length_px=EXAMPLE_FEMALE_PX, api_name="/count_batch")[
        4
    ]
    assert [r["source"] for r in summary["results"]] == [
        f"survey.zip/day1/{EXAMPLES[0].name}",
        f"survey.zip/day1/{EXAMPLES[1].name}",
    ]
    assert [f["file"] for f in summary["failures"]] == ["survey.zip", "survey.zip/day1/notes.txt"]
    assert "1 hidden or macOS metadata file(s)" in summary["failures"][0]["error"]  # accounted for, in one line
    assert "not a photo" in summary["failures"][1]["error"]


def test_bad_requests_get_clear_errors(client, tmp_path):
    with pytest.raises(AppError, match="Upload photos"):
        client.predict([], api_name="/count_batch")
    with pytest.raises(AppError, match="is not in the list of choices"):
        client.predict(handle_file(str(EXAMPLES[0])), model_version="v999", api_name="/count")
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(AppError, match=r"notes\.jpg: not an image file"):
        client.predict(handle_file(str(text)), api_name="/count")
    assert client.predict(api_name="/model_info")["sha256"]  # still serving


def test_share_offline_keeps_serving(tmp_path):
    """--share without internet: a clear message that no link was made, and the local server keeps answering."""
    dead_proxy = f"http://127.0.0.1:{free_port()}"  # nothing listens here: every outside request fails at once
    offline = {
        "HTTPS_PROXY": dead_proxy,
        "HTTP_PROXY": dead_proxy,
        "https_proxy": dead_proxy,
        "http_proxy": dead_proxy,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "GRADIO_SHARE": "1",  # the environment switch, as on the command line with --share
    }
    running = start_app(tmp_path, extra_env=offline)
    try:
        deadline = time.monotonic() + 60
        while "could not create a public share link" not in running.log() and time.monotonic() < deadline:
            time.sleep(0.5)
        log = running.log()
        assert "could not create a public share link" in log, log[-2000:]
        assert "still serving locally" in log
        assert running.alive() and answers(running.ready_url)
        info = Client(running.url, verbose=False).predict(api_name="/model_info")
        assert info["sha256"] == running.expected_sha256
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("0.0.0.0", 7860, False)),
        ({"GRADIO_SHARE": "1"}, ("0.0.0.0", 7860, True)),
        ({"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": "9000"}, ("127.0.0.1", 9000, False)),
    ],
)
def test_cli_defaults_are_what_spaces_expect(monkeypatch, env, expected):
    from sealion_app import main as app_module

    for name in ("GRADIO_SHARE", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = app_module.parse_args([])
    assert (args.host, args.port, args.share) == expected
    assert args.max_file_size and args.queue_size > 0 and args.concurrency >= 1
    assert app_module.parse_args(["--share", "--port", "1234"]).share is True


def test_raw_http_flow_as_in_the_readme(app, client):
    """Upload, call, read the event stream: the curl example of docs/app.md, with httpx."""
    import httpx

    version = client.predict(api_name="/model_info")["version"]
    with httpx.Client(base_url=app.url, timeout=120) as http:
        with EXAMPLES[0].open("rb") as handle:
            (uploaded,) = http.post("gradio_api/upload", files={"files": (EXAMPLES[0].name, handle)}).json()
        photo = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
        body = {"data": [photo, 0.25, 0.45, "auto", 0, EXAMPLE_FEMALE_PX, version]}
        event_id = http.post("gradio_api/call/count", json=body).json()["event_id"]
        stream = http.get(f"gradio_api/call/count/{event_id}").text
    events = [line.removeprefix("event: ") for line in stream.splitlines() if line.startswith("event: ")]
    assert events[-1] == "complete", stream[:500]
    data = json.loads([line for line in stream.splitlines() if line.startswith("data: ")][-1].removeprefix("data: "))
    annotated, _table, result, _status = data
    assert annotated["url"].endswith((".jpeg", ".jpg")) and list(result["counts"]) == SEA_LION_CLASSES

    with httpx.Client(base_url=app.url, timeout=60) as http:
        event_id = http.post("gradio_api/call/count", json={"data": [None, 0.25, 0.45, "auto", 0, 80, version]}).json()
        stream = http.get(f"gradio_api/call/count/{event_id['event_id']}").text
    assert "event: error" in stream and "Upload a photo" in stream


def test_concurrent_requests_share_one_model_safely(app):
    """Several clients at once: every job completes, and the same photo gives the same answer each time."""
    clients = [Client(app.url, verbose=False) for _ in range(3)]
    jobs = [c.submit(handle_file(str(EXAMPLES[1])), 0.05, 0.45, "auto", 0, 80, api_name="/count") for c in clients]
    outputs = [job.result(timeout=600) for job in jobs]
    for annotated, *_ in outputs:  # every client gets the whole JPEG, though all three drew the same picture
        with Image.open(annotated) as picture:
            picture.load()
            assert picture.size == Image.open(EXAMPLES[1]).size
    results = [output[2] for output in outputs]
    first = results[0]
    for result in results[1:]:
        assert result["counts"] == first["counts"]
        assert [d["xyxy"] for d in result["detections"]] == [d["xyxy"] for d in first["detections"]]


def test_queue_is_bounded(tmp_path):
    """With --queue-size 1 and one worker, extra simultaneous requests are refused, and the server keeps serving."""
    running = start_app(tmp_path, args=["--queue-size", "1", "--concurrency", "1"])
    try:
        clients = [Client(running.url, verbose=False) for _ in range(4)]
        slow = handle_file(str(EXAMPLES[0]))  # females 10 px (scale 1/8): upscaled 2x, ~100 tiles
        jobs = [c.submit(slow, 0.25, 0.45, "auto", 0, 10, api_name="/count") for c in clients]
        outcomes = []
        for job in jobs:
            try:
                job.result(timeout=600)
                outcomes.append("done")
            except Exception as exc:  # noqa: BLE001 - gradio_client raises different types for a full queue
                outcomes.append(str(exc))
        assert outcomes.count("done") >= 1
        refused = [o for o in outcomes if o != "done"]
        assert refused and all("queue is full" in o.lower() for o in refused), outcomes
        assert running.alive() and Client(running.url, verbose=False).predict(api_name="/model_info")["sha256"]
    finally:
        running.stop()


def test_version_chooser_loads_another_version_on_first_use(tmp_path):
    """A manifest with two versions: the default is loaded at start, the other on its first request, then reused."""
    import shutil

    import yaml

    from detector.versions.manifest import load_manifest
    from tests.helpers import build_untrained_model, sha256_of

    manifest = load_manifest(REPO_ROOT / "weights" / "manifest.yaml")
    default = manifest.get()
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copyfile(REPO_ROOT / "weights" / default.shipped_file, weights / default.shipped_file)
    other = build_untrained_model(weights / "v0-untrained.pt")
    data = yaml.safe_load((REPO_ROOT / "weights" / "manifest.yaml").read_text())
    data["versions"] = {default.name: data["versions"][default.name]}  # just the default and v0 below
    data["versions"]["v0"] = {
        **data["versions"][default.name],
        "revision": "v0",
        "commit": "",
        "filename": "v0-untrained.pt",
        "sha256": sha256_of(other),
        "shipped_file": "v0-untrained.pt",
        "metrics": {"note": "untrained test model"},
    }
    (weights / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    running = start_app(tmp_path, extra_env={"SEALION_MANIFEST": str(weights / "manifest.yaml")})
    try:
        client = Client(running.url, verbose=False)
        params = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/count"]["parameters"]
        chooser = next(p for p in params if p["parameter_name"] == "model_version")
        assert chooser["parameter_default"] == default.name and set(chooser["type"]["enum"]) == {default.name, "v0"}
        assert "Loading model version v0" not in running.log()
        result = client.predict(
            handle_file(str(EXAMPLES[1])), female_length_px=EXAMPLE_FEMALE_PX, model_version="v0", api_name="/count"
        )[2]
        assert result["model"]["version"] == "v0" and result["model"]["sha256"] == sha256_of(other)
        assert running.log().count("Loading model version v0") == 1
        info = client.predict("v0", api_name="/model_info")
        assert info["sha256"] == sha256_of(other) and info["metrics"] == {"note": "untrained test model"}
        assert running.log().count("Loading model version v0") == 1  # cached, not loaded again
        assert client.predict(api_name="/model_info")["version"] == default.name  # the default is unchanged
    finally:
        running.stop()
