"""Every exception the training steps raise, in one place (re-exported by the modules that raise them). Library
functions raise them; only a step's ``main()`` turns one into an exit."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """A training step cannot go on (missing file, bad table, inconsistent data); the message names the file."""


class PublishError(TrainingError):
    """Publishing cannot go on (tag exists, repo unusable, ...); the message says why."""


class PairMismatchError(ValueError):
    """The raw photo and the dotted copy are not the same photograph."""
