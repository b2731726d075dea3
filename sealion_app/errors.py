"""Every exception the app raises of its own, in one place (re-exported by the modules that raise them)."""

from __future__ import annotations


class MemberTooLarge(ValueError):
    """A zip member inflated past :data:`sealion_app.uploads.MAX_MEMBER_BYTES` (its header understated its size)."""
