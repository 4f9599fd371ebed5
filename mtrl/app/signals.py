"""SIGINT/SIGTERM as requests to stop, counted: what `mtrl train` and `mtrl sweep` both need.

A first signal asks for a clean stop (a run writes a checkpoint and exits; the sweep launcher passes SIGTERM
on to its runs); a second one asks harder (a run aborts; the launcher passes SIGINT on). The previous
handlers come back on exit.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Counts SIGINT/SIGTERM while active; `on_signal(signum, count)` runs in the handler (it may raise)."""

    def __init__(self, on_signal: Callable[[int, int], None] | None = None):
        self.count = 0
        self._on_signal = on_signal
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        return self.count > 0

    def _handle(self, signum: int, frame) -> None:
        self.count += 1
        if self._on_signal is not None:
            self._on_signal(signum, self.count)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # Python allows handlers only there
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
