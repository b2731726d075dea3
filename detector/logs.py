"""Where library chatter goes: stdout carries results only, so a count can be piped; logs go to stderr."""

from __future__ import annotations

import logging
import sys


def quiet_libraries(quiet: bool = False) -> None:
    """Send ultralytics' log lines to stderr and drop its INFO lines ("Loading … for OpenVINO inference…"); keep its
    warnings unless ``quiet``. (ultralytics installs its own stdout handler at import; no setting moves it.)"""
    from ultralytics.utils import LOGGER

    for handler in LOGGER.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    LOGGER.setLevel(logging.ERROR if quiet else logging.WARNING)
