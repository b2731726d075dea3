"""Every exception the detector raises, in one place (re-exported by the modules that raise them). Each message is
one line that says what went wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Callable


class DetectorError(Exception):
    """Base class of every error the detector raises on purpose.

    An error that a setting can mend names it through ``setting`` (a field of ``ModelSettings`` or ``CountOptions``,
    e.g. ``device``) and writes ``{setting}`` where its name goes: the library's message reads ``device=cpu``; an
    edge words it for its users with :meth:`worded` (the command line: ``--device cpu``)."""

    def __init__(self, message: str = "", *, setting: str | None = None) -> None:
        self.template, self.setting = message, setting
        super().__init__(self.worded(lambda name: f"{name}="))

    def worded(self, spelled: Callable[[str], str]) -> str:
        """The message with the setting spelled as ``spelled(name)`` says (``--device `` on the command line)."""
        if self.setting is None:
            return self.template
        return self.template.replace("{setting}", spelled(self.setting))


class ModelResolutionError(DetectorError):
    """A model version could not be found: unknown version, unreachable hub, missing revision or file."""


class WeightsIntegrityError(DetectorError):
    """A weights file does not match the sha256 it is pinned to."""


class ImageLoadError(DetectorError):
    """An input could not be read as a photo (corrupt, unsupported, too large)."""


class RunSettingsError(DetectorError):
    """A rerun asked for settings other than the run directory's."""


class SampleError(DetectorError):
    """The sample cannot be drawn or read (too few photos asked, no sample drawn yet, a changed run)."""


class ReviewSourceError(DetectorError):
    """A review source cannot be read, or its reviews do not match the run."""


class TooFewReviews(DetectorError):
    """A stratum has too few reviewed photos for an estimate with a standard error."""


class Interrupted(Exception):
    """Raised where counting can stop cleanly, after a signal asked it to."""
