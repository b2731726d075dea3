"""The app's model versions and runtimes: the startup detector, plus others loaded lazily and cached."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from detector.counting.scale import ScaleReference
from detector.errors import DetectorError
from detector.settings import ModelSettings
from detector.versions.manifest import Manifest, ModelVersion
from detector.versions.runtimes import DEFAULT_RUNTIME, offered_runtimes

if TYPE_CHECKING:
    from detector.counting.model import Detector

logger = logging.getLogger(__name__)

STARTUP = ""  # the runtime key of a version's default detector: the startup one's, or auto for another version


class ModelRegistry:
    """One shared :class:`Detector` per model version and runtime, created once and reused by every request.

    The startup detector is loaded eagerly; other versions listed in ``weights/manifest.yaml``, and other runtimes
    of any version, load on first use (hub cache → hub → shipped file, sha256-checked by the detector).
    ``Detector.count`` is itself lock-protected, so sharing one instance across request threads is safe.
    """

    def __init__(self, default: Detector, manifest: Manifest | None, settings: ModelSettings | None = None) -> None:
        self.default = default
        self.manifest = manifest
        self.settings = settings or ModelSettings(device=default.device)
        self.default_version = default.info.version
        self._loaded: dict[tuple[str, str], Detector] = {
            (self.default_version, STARTUP): default,
            (self.default_version, default.runtime): default,
        }
        self._lock = threading.Lock()

    @classmethod
    def start(cls, settings: ModelSettings | None = None) -> ModelRegistry:
        """Load the startup model (``settings``: the command line over the environment, else the manifest default).

        Versions picked later in the UI resolve from the manifest alone: nothing pinned for the first (an explicit
        weights file, hub repo or revision) carries over to them."""
        from detector.counting.model import Detector

        settings = settings or ModelSettings()
        default = Detector.load(settings)
        return cls(default, default.weights.manifest, settings)  # the manifest the load read, not a second read

    def choices(self) -> list[str]:
        """Version labels for the chooser: the startup model first, then the other manifest versions."""
        names = [self.default_version]
        if self.manifest:
            names += [name for name in self.manifest.versions if name != self.default_version]
        return names

    def runtime_choices(self, version: str | None = None) -> list[str]:
        """The runtimes a version offers: auto, torch, then its exports (from the manifest; nothing is loaded)."""
        version = version or self.default_version
        if version == self.default_version:
            exports = self.default.weights.version.runtimes  # the startup weights' own (a model card's too)
        elif self.manifest and version in self.manifest.versions:
            exports = self.manifest.get(version).runtimes
        else:
            exports = {}
        return offered_runtimes(exports)

    def scale_reference(self, version: str | None = None) -> ScaleReference:
        """How a version measures photo scale (its reference class and length), from the manifest: nothing is
        loaded. An unknown version: the startup model's."""
        version = version or self.default_version
        if version != self.default_version and self.manifest and version in self.manifest.versions:
            return self.manifest.get(version).scale_reference
        return self.default.info.scale_reference

    def model_version(self, version: str | None = None) -> ModelVersion:
        """A version's record (title, subject, metrics, ...), from the manifest: nothing is loaded. An unknown
        version: the startup model's."""
        version = version or self.default_version
        if version != self.default_version and self.manifest and version in self.manifest.versions:
            return self.manifest.get(version)
        return self.default.weights.version

    def class_names(self, version: str | None = None) -> tuple[str, ...]:
        """A version's classes, from the manifest (the startup model's: its weights' own)."""
        version = version or self.default_version
        if version != self.default_version and self.manifest and version in self.manifest.versions:
            return tuple(self.manifest.get(version).class_names)
        return tuple(self.default.class_names)

    def is_loaded(self, version: str | None, runtime: str | None = None) -> bool:
        return self._key(version, runtime) in self._loaded

    def get(self, version: str | None = None, runtime: str | None = None) -> Detector:
        """The detector of a version (the startup model for ``None``/empty) with a runtime, loaded on first use.

        ``runtime`` None, empty or "auto": the startup detector for the startup version, auto for another; a named
        runtime the version lacks, or one that cannot run here, raises :class:`DetectorError`."""
        key = self._key(version, runtime)
        detector = self._loaded.get(key)
        if detector is not None:
            return detector
        version, runtime = key
        if version not in self.choices():
            known = ", ".join(self.choices())
            raise DetectorError(f"Unknown model version {version!r}; choose one of: {known}.")
        offered = self.runtime_choices(version)
        if runtime != STARTUP and runtime not in offered:
            raise DetectorError(
                f"Model version {version} has no runtime {runtime!r}; choose one of: {', '.join(offered)}."
            )
        with self._lock:  # one load at a time; a second caller waits and then reuses the result
            detector = self._loaded.get(key)
            if detector is None:
                detector = self._load(version, runtime, offered)
                self._loaded[key] = detector
                self._loaded.setdefault((version, detector.runtime), detector)  # what it runs, asked for by name
        return detector

    def _key(self, version: str | None, runtime: str | None) -> tuple[str, str]:
        runtime = (runtime or "").strip().lower()
        return version or self.default_version, STARTUP if runtime in (STARTUP, DEFAULT_RUNTIME) else runtime

    def _load(self, version: str, runtime: str, offered: list[str]) -> Detector:
        """Load ``version`` with ``runtime`` (STARTUP: auto): the startup version keeps its startup settings (its
        weights, as pinned), another resolves from the manifest (:meth:`ModelSettings.for_version`)."""
        from detector.counting.model import Detector

        settings = self.settings if version == self.default_version else self.settings.for_version(version)
        if runtime == STARTUP:
            logger.info("Loading model version %s on first use", version)
            return Detector.load(settings)
        logger.info("Loading model version %s with runtime %s on first use", version, runtime)
        try:
            return Detector.load(replace(settings, runtime=runtime))
        except DetectorError as exc:
            reason = str(exc).rstrip(". ")
            raise DetectorError(f"Model version {version}: {reason}. Its runtimes: {', '.join(offered)}.") from exc
