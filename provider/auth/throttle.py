"""Failed-login slowdown per source address.

After `free_failures` failed logins from one address, each further attempt from it waits
`base_delay * 2**k` seconds (capped at `max_delay`) before its credentials are even looked at,
and a failure's 401 is sent only after that delay. A success or `forget_after` quiet seconds
clear the record. Time comes from an injected clock; nothing here sleeps.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class _Record:
    failures: int
    last: float


class FailureThrottle:
    def __init__(self, clock, *, free_failures: int = 3, base_delay: float = 1.0,
                 max_delay: float = 30.0, forget_after: float = 900.0,
                 max_sources: int = 10000):
        self.clock = clock
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_sources = max_sources
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def _delay_for(self, failures: int) -> float:
        over = failures - self.free_failures
        if over <= 0:
            return 0.0
        return min(self.base_delay * (2 ** (over - 1)), self.max_delay)

    def _current(self, source: str, now: float) -> _Record | None:
        rec = self._records.get(source)
        if rec is not None and now - rec.last > self.forget_after:
            del self._records[source]
            return None
        return rec

    def wait_before_check(self, source: str) -> float:
        """Seconds an attempt from `source` must wait before its credentials are checked."""
        now = self.clock.monotonic()
        with self._lock:
            rec = self._current(source, now)
            if rec is None:
                return 0.0
            return max(0.0, rec.last + self._delay_for(rec.failures) - now)

    def failed(self, source: str) -> float:
        """Record a failure; returns how long to hold back the 401 answering it."""
        now = self.clock.monotonic()
        with self._lock:
            rec = self._current(source, now)
            if rec is None:
                if len(self._records) >= self.max_sources:
                    oldest = min(self._records, key=lambda s: self._records[s].last)
                    del self._records[oldest]
                rec = self._records[source] = _Record(0, now)
            rec.failures += 1
            rec.last = now
            return self._delay_for(rec.failures)

    def succeeded(self, source: str) -> None:
        with self._lock:
            self._records.pop(source, None)

    def failures(self, source: str) -> int:
        with self._lock:
            rec = self._current(source, self.clock.monotonic())
            return rec.failures if rec else 0
