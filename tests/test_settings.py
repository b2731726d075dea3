"""Settings read once from the environment, typed, validated with the variable's name; options over them."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.errors import DetectorError
from detector.settings import CountOptions, ModelSettings, Settings, default_of


def test_the_environment_becomes_typed_settings():
    settings = Settings.from_env(
        {
            "SEALION_MODEL_VERSION": "v1",
            "SEALION_WEIGHTS": "/tmp/w.pt",
            "SEALION_WEIGHTS_SHA256": "AB" * 32,
            "SEALION_REFRESH": "yes",
            "SEALION_DEVICE": "cpu",
            "SEALION_GROUND_SCALE": "0.5",
            "SEALION_MAX_PIXELS": "1000",
            "SEALION_RUNTIME": "torch",
            "HF_ENDPOINT": "http://127.0.0.1:9",
            "HF_HUB_OFFLINE": "1",
            "SEALION_HUB_TIMEOUT": "0.5",
        }
    )
    model = settings.model
    assert (model.version, model.weights, model.sha256) == ("v1", Path("/tmp/w.pt"), "ab" * 32)
    assert (model.refresh, model.device, model.ground_scale, model.runtime) == (True, "cpu", 0.5, "torch")
    assert (model.hub.endpoint, model.hub.offline, model.hub.timeout_s) == ("http://127.0.0.1:9", True, 0.5)
    assert settings.max_pixels == 1000
    assert Settings.from_env({}) == Settings()  # nothing set: the defaults


def test_the_reviews_folder_comes_from_the_environment_too():
    """sealion-app's --reviews-dir default: SEALION_REVIEWS_DIR, else the XDG data home (read here, not in main)."""
    assert Settings.from_env({"SEALION_REVIEWS_DIR": "/data/reviews"}).reviews_dir == Path("/data/reviews")
    xdg = Settings.from_env({"XDG_DATA_HOME": "/xdg"}).reviews_dir
    assert xdg == Path("/xdg/sealion-counter/reviews")
    assert Settings.from_env({}).reviews_dir == Path.home() / ".local" / "share" / "sealion-counter" / "reviews"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SEALION_GROUND_SCALE": "half"}, "SEALION_GROUND_SCALE must be a float"),
        ({"SEALION_MAX_PIXELS": "-5"}, "SEALION_MAX_PIXELS must be positive"),
        ({"SEALION_RUNTIME": "tensorrt"}, "SEALION_RUNTIME must be one of"),
    ],
)
def test_a_bad_variable_is_refused_by_name(environ, message):
    with pytest.raises(DetectorError, match=message):
        Settings.from_env(environ)


def test_command_line_options_override_and_none_keeps_the_environment():
    model = ModelSettings(version="v1", device="cpu").with_options(version=None, device="cuda", weights="x.pt")
    assert (model.version, model.device, model.weights) == ("v1", "cuda", Path("x.pt"))


def test_another_version_keeps_device_and_hub_but_nothing_pinned_to_the_first():
    first = ModelSettings(weights=Path("mine.pt"), sha256="a" * 64, revision="abc", device="cpu", runtime="openvino")
    other = first.for_version("v1")
    assert (other.version, other.weights, other.sha256, other.revision) == ("v1", None, None, None)
    assert other.device == "cpu" and other.hub == first.hub
    assert other.runtime == "auto"  # v1 may have no OpenVINO export; torch would carry over
    assert ModelSettings(runtime="torch").for_version("v1").runtime == "torch"


def test_count_options_are_validated_and_give_the_command_line_its_defaults():
    assert default_of(CountOptions, "iou") == CountOptions().iou
    for bad, name in [({"conf": 2}, "conf"), ({"slicing": "x"}, "slicing"), ({"tile_size": 8}, "tile_size")]:
        with pytest.raises(DetectorError, match=name):
            CountOptions(**bad)
    assert CountOptions(conf=0.3).changed(iou=0.5) == CountOptions(conf=0.3, iou=0.5)


def test_the_package_face_hands_on_the_count_types():
    import detector

    assert detector.CountOptions is CountOptions and "CountOptions" in detector.__all__
    from detector import CountResult, Detector  # noqa: F401 - Detector is imported lazily (torch)
