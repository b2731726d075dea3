"""Ctrl-C (SIGINT) and SIGTERM while counting: finish the photo being counted, write its line, then stop cleanly.

Hand-written because the default (a ``KeyboardInterrupt`` raised wherever the main thread happens to be, often inside
the network's ``infer``) cannot let the photo in hand finish, and no library offers a phase-aware handler.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from detector.errors import Interrupted

INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C


class StopOnSignal:
    """Install SIGINT/SIGTERM handlers for a count (main thread only; elsewhere the defaults stay).

    - before :meth:`counting`: a signal stops at once (``KeyboardInterrupt``);
    - while counting: the first signal sets :attr:`requested` (:meth:`check` then raises :class:`Interrupted` at the
      next photo boundary), a second stops at once;
    - after :meth:`finishing`: signals are noted and ignored, so the summary files are written whole and no library
      prints a traceback at exit.

    The handlers stay installed until the process ends (a command line tool's lifetime).
    """

    def __init__(self) -> None:
        self.requested = False
        self._phase = "starting"

    def install(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                signal.signal(number, self._handle)
        return self

    def counting(self) -> None:
        self._phase = "counting"

    def finishing(self) -> None:
        self._phase = "finishing"

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal asked to stop."""
        if self.requested and self._phase == "counting":
            raise Interrupted

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self._phase == "finishing":
            self.requested = True
            return
        if self._phase == "counting" and not self.requested:
            self.requested = True
            return
        raise KeyboardInterrupt
