"""Errors raised by the detector. Each message is one line that says what went wrong and how to fix it."""


class DetectorError(Exception):
    """Base class of every error the detector raises on purpose."""


class ModelResolutionError(DetectorError):
    """A model version could not be found: unknown version, unreachable hub, missing revision or file."""


class WeightsIntegrityError(DetectorError):
    """A weights file does not match the sha256 it is pinned to."""


class ImageLoadError(DetectorError):
    """An input could not be read as a photo (corrupt, unsupported, too large)."""
