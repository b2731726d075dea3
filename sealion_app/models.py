"""The app's model versions: the startup detector, plus other manifest versions loaded lazily and cached."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from detector.errors import DetectorError
from detector.manifest import Manifest, load_manifest
from detector.settings import ModelSettings

if TYPE_CHECKING:
    from detector.model import Detector

logger = logging.getLogger(__name__)


class ModelRegistry:
    """One shared :class:`Detector` per model version, created once and reused by every request.

    The startup detector is loaded eagerly; other versions listed in ``weights/manifest.yaml`` load on first use
    (hub cache → hub → shipped file, sha256-checked by the detector). ``Detector.count`` is itself lock-protected,
    so sharing one instance across request threads is safe.
    """

    def __init__(self, default: Detector, manifest: Manifest | None, settings: ModelSettings | None = None) -> None:
        self.default = default
        self.manifest = manifest
        self.settings = settings or ModelSettings(device=default.device)
        self.default_label = default.info.version
        self._loaded: dict[str, Detector] = {self.default_label: default}
        self._lock = threading.Lock()

    @classmethod
    def start(cls, settings: ModelSettings | None = None) -> ModelRegistry:
        """Load the startup model (``settings``: the command line over the environment, else the manifest default).

        Versions picked later in the UI resolve from the manifest alone: nothing pinned for the first (an explicit
        weights file, hub repo or revision) carries over to them."""
        from detector.model import Detector

        settings = settings or ModelSettings()
        default = Detector.load(settings)
        try:
            manifest = load_manifest(settings.manifest)
        except DetectorError as exc:
            logger.warning("No model manifest (%s); only the startup model is available.", exc)
            manifest = None
        return cls(default, manifest, settings)

    def choices(self) -> list[str]:
        """Version labels for the chooser: the startup model first, then the other manifest versions."""
        names = [self.default_label]
        if self.manifest:
            names += [name for name in self.manifest.versions if name != self.default_label]
        return names

    def is_loaded(self, label: str | None) -> bool:
        return (label or self.default_label) in self._loaded

    def get(self, label: str | None = None) -> Detector:
        """The detector of a version label (the startup model for ``None``/empty), loading it on first use."""
        label = label or self.default_label
        detector = self._loaded.get(label)
        if detector is not None:
            return detector
        if label not in self.choices():
            known = ", ".join(self.choices())
            raise DetectorError(f"Unknown model version {label!r}; choose one of: {known}.")
        with self._lock:  # one load at a time; a second caller waits and then reuses the result
            detector = self._loaded.get(label)
            if detector is None:
                from detector.model import Detector

                logger.info("Loading model version %s on first use", label)
                detector = Detector.load(self.settings.for_version(label))
                self._loaded[label] = detector
        return detector
