"""The product's settings and defaults, in one place (huggingface_hub's ``constants`` is the model).

Entry points (``sealion-count``, ``sealion-app``, the ``training.*`` commands) read the environment once with
:meth:`Settings.from_env`, let their command-line options override it, and pass the typed objects down. Nothing
below them reads ``os.environ``: library functions take :class:`ModelSettings`, :class:`HubSettings` and
:class:`CountOptions` as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from detector.errors import DetectorError
from detector.versions.runtimes import DEFAULT_RUNTIME, RUNTIME_CHOICES

# Count defaults: what a count uses unless the user or the model version says otherwise.
DEFAULT_CONF = 0.25  # the confidence threshold of a class the model version has no calibrated threshold for
DEFAULT_IOU = 0.45
DEFAULT_OVERLAP = 0.2
DEFAULT_BATCH = 16
DEFAULT_IMGSZ = 640  # the network input of a checkpoint that records none
MIN_TILE_SIZE = 32
Slicing = Literal["auto", "on", "off"]
SLICING_CHOICES: tuple[str, ...] = get_args(Slicing)
DEFAULT_SLICING: Slicing = "auto"  # tile a photo larger than one tile
DEFAULT_HUB_TIMEOUT_S = 3.0
# Threads a survey run decodes photos in, ahead of the network; it holds at most a group plus twice that many
# decoded photos (bounded memory).
DEFAULT_DECODERS = 2
# Photos a survey run counts together, their tiles sharing the network's batches (full batches of 16 instead of a
# short last batch per photo).
DEFAULT_GROUP = 4
# Skip tiles a coarse first pass finds no animal near (detector.counting.gate); "off" runs the network on every tile.
# On by default because `python -m benchmarks.gate_recall` shows it keeps the default model version's counts (v4:
# benchmarks/results/gate_recall.json; tests/test_gate.py allows it on only with a table of the default model and the
# gate's settings that says so).
GATE_CHOICES: tuple[str, ...] = ("on", "off")
DEFAULT_GATE = True

# The environment variables an entry point reads (and nothing else does).
ENV_MODEL_VERSION = "SEALION_MODEL_VERSION"
ENV_WEIGHTS = "SEALION_WEIGHTS"
ENV_WEIGHTS_SHA256 = "SEALION_WEIGHTS_SHA256"
ENV_HUB_REPO = "SEALION_HUB_REPO"
ENV_HUB_REVISION = "SEALION_HUB_REVISION"
ENV_REFRESH = "SEALION_REFRESH"
ENV_DEVICE = "SEALION_DEVICE"
ENV_MANIFEST = "SEALION_MANIFEST"
ENV_GROUND_SCALE = "SEALION_GROUND_SCALE"
ENV_MAX_PIXELS = "SEALION_MAX_PIXELS"
ENV_HUB_TIMEOUT = "SEALION_HUB_TIMEOUT"
ENV_RUNTIME = "SEALION_RUNTIME"
ENV_REVIEWS_DIR = "SEALION_REVIEWS_DIR"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class CountOptions:
    """How one photo is counted; validated here, so a bad value is refused before any work, naming the setting.

    ``conf`` None: the model version's calibrated per-class thresholds (``class_conf`` replaces them).
    ``tile_size`` None: the model's input size. ``photo_scale`` None: ``reference_length`` (how long the version's
    reference class is in the photos, in pixels) or else auto from each photo's size (:mod:`detector.counting.scale`).
    ``gate``: skip the tiles a coarse first pass finds no animal near (:mod:`detector.counting.gate`; on by default,
    :data:`DEFAULT_GATE`); False runs the full pass on every tile.
    """

    conf: float | None = None
    iou: float = DEFAULT_IOU
    slicing: Slicing = DEFAULT_SLICING
    tile_size: int | None = None
    overlap: float = DEFAULT_OVERLAP
    photo_scale: float | None = None
    batch_size: int = DEFAULT_BATCH
    class_conf: Mapping[str, float] | None = None
    gate: bool = DEFAULT_GATE
    reference_length: float | None = None  # the reference class's length in the photos (px); sets the photo scale
    reference_class: str | None = None  # the class reference_length measures; None: the version's reference class

    def __post_init__(self) -> None:
        if self.conf is not None and not 0 <= self.conf <= 1:
            raise DetectorError(f"conf must be between 0 and 1, got {self.conf}.")
        if not 0 <= self.iou <= 1:
            raise DetectorError(f"iou must be between 0 and 1, got {self.iou}.")
        if self.slicing not in SLICING_CHOICES:
            raise DetectorError(f"slicing must be one of {', '.join(SLICING_CHOICES)}, got {self.slicing!r}.")
        if self.tile_size is not None and self.tile_size < MIN_TILE_SIZE:
            raise DetectorError(f"tile_size must be at least {MIN_TILE_SIZE} pixels, got {self.tile_size}.")
        if not 0 <= self.overlap < 1:
            raise DetectorError(f"overlap must be at least 0 and below 1, got {self.overlap}.")
        if self.photo_scale is not None and not self.photo_scale > 0:
            raise DetectorError(f"photo_scale must be positive, got {self.photo_scale}.")
        if self.reference_length is not None and self.photo_scale is not None:
            raise DetectorError("give photo_scale or reference_length, not both (each sets the photo scale).")
        if self.batch_size < 1:
            raise DetectorError(f"batch_size must be at least 1, got {self.batch_size}.")
        if not isinstance(self.gate, bool):
            raise DetectorError(f"gate must be True or False, got {self.gate!r}.")

    def changed(self, **values: Any) -> CountOptions:
        """A copy with some fields changed (validated again)."""
        return replace(self, **values) if values else self

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["class_conf"] = dict(self.class_conf) if self.class_conf is not None else None
        return data


def gate_arg(text: str) -> bool:
    """A gate setting as the command line, the app and the API write it: ``on`` or ``off`` (True/False too)."""
    word = str(text).strip().lower()
    if word in ("on", "true", "1", "yes"):
        return True
    if word in ("off", "false", "0", "no"):
        return False
    raise DetectorError(f"gate must be one of {', '.join(GATE_CHOICES)}, got {text!r}.")


def default_of(cls: type, name: str) -> Any:
    """A dataclass field's default: argparse defaults come from here, so each default is typed once."""
    for item in fields(cls):
        if item.name == name:
            return item.default
    raise AttributeError(f"{cls.__name__} has no field {name!r}")


@dataclass(frozen=True)
class HubSettings:
    """Where the model hub is. ``endpoint``/``cache_dir`` None: huggingface_hub's own defaults."""

    endpoint: str | None = None
    cache_dir: str | None = None
    offline: bool = False
    timeout_s: float = DEFAULT_HUB_TIMEOUT_S


@dataclass(frozen=True)
class ModelSettings:
    """Which model version to load, from where, and on which device (:func:`~detector.versions.hub.resolve_weights`)."""

    version: str | None = None  # a manifest version name; None: the manifest's default
    weights: Path | None = None  # an explicit local weights file
    sha256: str | None = None  # pin for ``weights`` or an unlisted hub revision
    repo_id: str | None = None
    revision: str | None = None
    refresh: bool = False  # ask the hub first even when a verified local copy exists
    device: str = "auto"
    manifest: Path | None = None  # None: the shipped weights/manifest.yaml
    ground_scale: float | None = None  # of an unlisted local weights file (a listed one knows its own)
    hub: HubSettings = field(default_factory=HubSettings)
    runtime: str = DEFAULT_RUNTIME  # one of RUNTIME_CHOICES (see detector.versions.runtimes)

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIME_CHOICES:
            raise DetectorError(f"runtime must be one of {', '.join(RUNTIME_CHOICES)}, got {self.runtime!r}.")

    def with_options(self, **values: Any) -> ModelSettings:
        """A copy where the given values that are not None replace this one's (command-line options over env)."""
        given = {k: v for k, v in values.items() if v is not None}
        if isinstance(given.get("weights"), str):
            given["weights"] = Path(given["weights"])
        return replace(self, **given) if given else self

    def for_version(self, version: str) -> ModelSettings:
        """The settings of another manifest version: same device, hub and manifest, nothing pinned to the first.

        An exported runtime named for the first version becomes auto (another version may have no such export);
        torch, which every version has, carries over."""
        runtime = self.runtime if self.runtime in ("torch", DEFAULT_RUNTIME) else DEFAULT_RUNTIME
        return replace(
            self, version=version, weights=None, sha256=None, repo_id=None, revision=None, ground_scale=None,
            runtime=runtime,
        )  # fmt: skip


def _reviews_dir(data_home: str | None = None) -> Path:
    """``$XDG_DATA_HOME/sealion-counter/reviews`` (``~/.local/share`` when unset): saved reviews outlive the app."""
    return Path(data_home or Path.home() / ".local" / "share") / "sealion-counter" / "reviews"


@dataclass(frozen=True)
class Settings:
    """Everything an entry point takes from the environment."""

    model: ModelSettings = field(default_factory=ModelSettings)
    max_pixels: int | None = None  # largest photo decoded; None: Pillow's decompression-bomb limit
    reviews_dir: Path = field(default_factory=_reviews_dir)  # where the app keeps saved reviews

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the ``SEALION_*`` (and ``HF_*`` hub, ``XDG_DATA_HOME``) variables; a bad value raises an error naming
        the variable."""
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        def number(name: str, kind: type = float) -> Any:
            raw = text(name)
            if raw is None:
                return None
            try:
                value = kind(raw)
            except ValueError:
                raise DetectorError(f"{name} must be a {kind.__name__}, got {raw!r}.") from None
            if not value > 0:
                raise DetectorError(f"{name} must be positive, got {raw!r}.")
            return value

        weights = text(ENV_WEIGHTS)
        manifest = text(ENV_MANIFEST)
        runtime = (text(ENV_RUNTIME) or DEFAULT_RUNTIME).lower()
        if runtime not in RUNTIME_CHOICES:
            raise DetectorError(f"{ENV_RUNTIME} must be one of {', '.join(RUNTIME_CHOICES)}, got {runtime!r}.")
        hub = HubSettings(
            endpoint=text("HF_ENDPOINT"),
            cache_dir=text("HF_HUB_CACHE"),
            offline=(text("HF_HUB_OFFLINE") or "").lower() in TRUE_WORDS,
            timeout_s=number(ENV_HUB_TIMEOUT) or DEFAULT_HUB_TIMEOUT_S,
        )
        model = ModelSettings(
            version=text(ENV_MODEL_VERSION),
            weights=Path(weights) if weights else None,
            sha256=(text(ENV_WEIGHTS_SHA256) or "").lower() or None,
            repo_id=text(ENV_HUB_REPO),
            revision=text(ENV_HUB_REVISION),
            refresh=(text(ENV_REFRESH) or "").lower() in TRUE_WORDS,
            device=text(ENV_DEVICE) or "auto",
            manifest=Path(manifest) if manifest else None,
            ground_scale=number(ENV_GROUND_SCALE),
            hub=hub,
            runtime=runtime,
        )
        reviews_dir = text(ENV_REVIEWS_DIR)
        return cls(
            model=model,
            max_pixels=number(ENV_MAX_PIXELS, int),
            reviews_dir=Path(reviews_dir) if reviews_dir else _reviews_dir(text("XDG_DATA_HOME")),
        )
