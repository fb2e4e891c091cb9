"""The worker threads that run blocking request work (parse, dispatch, serialize, password
checks) off the reactor.

A drop-in for the part of `twisted.python.threadpool.ThreadPool` the server uses
(`callInThreadWithCallback`, so `deferToThreadPool` works unchanged; `callInThread`; `start`;
`stop`), with a fixed number of threads. Twisted's pool routes every call through its team
coordinator (several Python frames and a lock per hand-off) to grow and shrink the pool; a
fixed pool needs none of that, and the hand-off is a measurable part of a small request's
cost (GetInstance from one keep-alive client).

Work is queued in order (FIFO) and handed to the worker that went idle *last* (LIFO): a
client sending one request after another is then served by one thread whose stack, caches
and CPU are still warm, where a plain shared queue wakes the threads in turn (each request
on the thread that has been asleep longest). Under concurrent load every idle thread is
woken as work arrives, as before.
"""
from __future__ import annotations

import collections
import logging
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
        self._pending: collections.deque = collections.deque()
        # the wake-up lock of each idle worker, the most recently idle last; a worker's lock
        # is held while it sleeps and released by whoever hands it work
        self._idle: list[threading.Lock] = []
        self._mutex = threading.Lock()
        self._local = threading.local()         # .wake: the wake-up lock of a worker thread
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
            self._put(_STOP)
        for t in threads:
            if t is not threading.current_thread():
                t.join()

    def callInThreadWithCallback(self, onResult: Callable | None, func: Callable,
                                 *args, **kw) -> None:
        """Run `func(*args, **kw)` in a worker; then `onResult(True, result)` or
        `onResult(False, Failure)` in that worker (as Twisted's ThreadPool does)."""
        if self.joined:
            return
        self._put((onResult, func, args, kw))

    def callInThread(self, func: Callable, *args, **kw) -> None:
        self.callInThreadWithCallback(None, func, *args, **kw)

    def _put(self, item) -> None:
        idle = self._idle
        with self._mutex:
            self._pending.append(item)
            if not idle:
                wake = None
            elif idle[-1] is getattr(self._local, "wake", None) and len(idle) > 1:
                # queued from a worker's own result callback (the worker is listed idle but
                # still busy delivering): another idle thread takes it at once
                wake = idle.pop(-2)
            else:
                wake = idle.pop()
        if wake is not None:
            wake.release()

    def _work(self) -> None:
        pending, idle, mutex = self._pending, self._idle, self._mutex
        wake = self._local.wake = threading.Lock()
        wake.acquire()
        with mutex:
            idle.append(wake)
        while True:
            wake.acquire()              # released by _put, with an item queued for us
            with mutex:
                if not pending:         # a busy worker took it first: back to sleep
                    idle.append(wake)
                    continue
                item = pending.popleft()
            while item is not None:
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
                # Listed as idle *before* the result goes back: the reply lets a client send
                # its next request, which must find this (warm) thread on top of the stack.
                # A release that comes before our acquire just makes the acquire return.
                with mutex:
                    if pending:
                        item = pending.popleft()
                    else:
                        idle.append(wake)
                try:
                    if onResult is not None:
                        onResult(ok, result)
                    elif not ok:
                        log.error("unhandled error in a worker: %s", result.getTraceback())
                except BaseException:
                    log.exception("error delivering a worker's result")
                onResult = result = None
