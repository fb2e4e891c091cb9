"""The request worker pool (provider/http/workers.py): results and failures come back through
`deferToThreadPool` as with Twisted's ThreadPool, work runs on the pool's threads, stop
finishes queued work and ends the threads."""
from __future__ import annotations

import threading

import pytest
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from provider.http.workers import WorkerPool


class ImmediateReactor:
    """callFromThread runs the call at once (in the worker) and records it."""

    def __init__(self):
        self.calls = []
        self.done = threading.Event()

    def callFromThread(self, f, *args):
        self.calls.append(threading.current_thread().name)
        f(*args)
        self.done.set()


@pytest.fixture
def pool():
    p = WorkerPool(2, name="t-worker")
    p.start()
    yield p
    p.stop()


def _result(d):
    out = []
    d.addBoth(out.append)
    return out


def test_result_comes_back_from_a_worker_thread(pool):
    reactor = ImmediateReactor()
    out = _result(deferToThreadPool(reactor, pool, lambda a, b=0: (a + b,
                                    threading.current_thread().name), 2, b=3))
    assert reactor.done.wait(5)
    assert out[0][0] == 5 and out[0][1].startswith("t-worker-")
    assert reactor.calls[0].startswith("t-worker-")


def test_an_exception_becomes_a_failure(pool):
    reactor = ImmediateReactor()

    def boom():
        raise KeyError("nope")

    out = _result(deferToThreadPool(reactor, pool, boom))
    assert reactor.done.wait(5)
    assert isinstance(out[0], Failure) and out[0].check(KeyError)


def test_work_runs_concurrently_on_all_threads(pool):
    barrier = threading.Barrier(2, timeout=5)
    seen, done = set(), threading.Semaphore(0)

    def meet():
        barrier.wait()                   # both threads must be inside at once
        seen.add(threading.current_thread().name)

    for _ in range(2):
        pool.callInThreadWithCallback(lambda ok, r: done.release(), meet)
    assert done.acquire(timeout=5) and done.acquire(timeout=5)
    assert seen == {"t-worker-0", "t-worker-1"}


def test_stop_finishes_queued_work_then_refuses_more():
    p = WorkerPool(1, name="s-worker")
    p.start()
    gate, ran = threading.Event(), []
    p.callInThread(gate.wait, 5)
    for i in range(3):
        p.callInThread(ran.append, i)
    gate.set()
    p.stop()
    assert ran == [0, 1, 2]
    assert not any(t.name.startswith("s-worker") for t in threading.enumerate())
    p.callInThread(ran.append, 99)
    assert ran == [0, 1, 2] and p.joined


def test_a_failing_callback_does_not_kill_the_worker(pool):
    done = threading.Event()

    def bad_callback(ok, result):
        raise RuntimeError("callback bug")

    pool.callInThreadWithCallback(bad_callback, lambda: 1)
    pool.callInThreadWithCallback(lambda ok, r: done.set(), lambda: 2)
    pool.callInThreadWithCallback(lambda ok, r: done.set(), lambda: 3)
    assert done.wait(5)


def test_size_must_be_positive():
    with pytest.raises(ValueError):
        WorkerPool(0)


def test_one_request_after_another_stays_on_the_warm_thread(pool):
    """Work that arrives after the previous result came back goes to the thread that went
    idle last (the same one), not to the threads in turn."""
    seen = []
    for _ in range(20):
        done = threading.Event()
        pool.callInThreadWithCallback(lambda ok, r, e=done: e.set(),
                                      lambda: seen.append(threading.current_thread().name))
        assert done.wait(5)
    assert len(set(seen[1:])) == 1, seen


def test_a_burst_is_spread_and_every_item_runs_once(pool):
    """Many items at once: each runs exactly once, whichever thread takes it; none is lost
    when a woken thread finds that a busy one took its item first."""
    ran, lock = [], threading.Lock()
    all_done = threading.Semaphore(0)

    def job(i):
        with lock:
            ran.append(i)

    for i in range(500):
        pool.callInThreadWithCallback(lambda ok, r: all_done.release(), job, i)
    for _ in range(500):
        assert all_done.acquire(timeout=5)
    assert sorted(ran) == list(range(500))


def test_work_queued_from_a_result_callback_runs_on_another_idle_thread(pool):
    """A callback that queues more work and waits for it (the worker delivering is
    listed idle but still busy) must not wait on itself."""
    inner_done = threading.Event()
    outer_done = threading.Event()
    where = {}

    def callback(ok, result):
        pool.callInThreadWithCallback(
            lambda ok2, r2: inner_done.set(),
            lambda: where.setdefault("inner", threading.current_thread().name))
        where["waited"] = inner_done.wait(5)
        where["outer"] = threading.current_thread().name
        outer_done.set()

    pool.callInThreadWithCallback(callback, lambda: None)
    assert outer_done.wait(10)
    assert where["waited"] and where["inner"] != where["outer"]
