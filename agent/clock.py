"""Injected time. Anything that progresses (boot, memory movement, jobs, expiry) reads a Clock."""
from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (wall clock, for timestamps people read)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for durations and progress)."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; tests drive progress with `advance`."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._lock = threading.Lock()
        self._wall = float(start)
        self._mono = 0.0

    def now(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._wall += seconds
            self._mono += seconds
