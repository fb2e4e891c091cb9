"""The worker threads that run blocking request work (parse, dispatch, serialize, password
checks) off the reactor.

A drop-in for the part of `twisted.python.threadpool.ThreadPool` the server uses
(`callInThreadWithCallback`, so `deferToThreadPool` works unchanged; `callInThread`; `start`;
`stop`), with a fixed number of threads taking work from one `queue.SimpleQueue`. Twisted's
pool routes every call through its team coordinator (several Python frames and a lock per
hand-off) to grow and shrink the pool; a fixed pool needs none of that, and the hand-off is
a measurable part of a small request's cost (GetInstance from one keep-alive client).
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

from twisted.python.failure import Failure

log = logging.getLogger("vmprovider.workers")

_STOP = object()


class WorkerPool:
    """`size` threads named `name`-N; work is run in the order it was queued."""

    def __init__(self, size: int, name: str = "vmprovider-worker"):
        if size < 1:
            raise ValueError("a worker pool needs at least one thread")
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.started = False
        self.joined = False

    # Twisted's ThreadPool attribute names, read by tests and tools that inspect a pool
    @property
    def min(self) -> int:
        return self.size

    @property
    def max(self) -> int:
        return self.size

    def start(self) -> None:
        with self._lock:
            if self.started or self.joined:
                return
            self.started = True
            for i in range(self.size):
                t = threading.Thread(target=self._work, name=f"{self.name}-{i}", daemon=True)
                t.start()
                self._threads.append(t)

    def stop(self) -> None:
        """Finish the work already queued, then end the threads (refuses new work)."""
        with self._lock:
            if self.joined:
                return
            self.joined = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(_STOP)
        for t in threads:
            if t is not threading.current_thread():
                t.join()

    def callInThreadWithCallback(self, onResult: Callable | None, func: Callable,
                                 *args, **kw) -> None:
        """Run `func(*args, **kw)` in a worker; then `onResult(True, result)` or
        `onResult(False, Failure)` in that worker (as Twisted's ThreadPool does)."""
        if self.joined:
            return
        self._queue.put((onResult, func, args, kw))

    def callInThread(self, func: Callable, *args, **kw) -> None:
        self.callInThreadWithCallback(None, func, *args, **kw)

    def _work(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                return
            onResult, func, args, kw = item
            item = None
            try:
                result = func(*args, **kw)
                ok = True
            except BaseException:
                result = Failure()
                ok = False
            func = args = kw = None        # no references kept while waiting for work
            try:
                if onResult is not None:
                    onResult(ok, result)
                elif not ok:
                    log.error("unhandled error in a worker: %s", result.getTraceback())
            except BaseException:
                log.exception("error delivering a worker's result")
            onResult = result = None
