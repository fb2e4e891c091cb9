"""What the server does without a client asking: jobs advance and archives are pruned.

* About once a second `job_manager(env).poll()` and then the model's tick `Agent.settle()`
  (hpvm_workload.settle_model) run in the worker pool (a LoopingCall only hands them over;
  a tick still running when the next one comes is not doubled), so a graceful stop's
  TimeoutPeriod acts, finished jobs expire and what the model's clock decided (finished
  stops, DM drivers that loaded) is persisted even when nobody reads it.
* At start the collection worker prunes old archives (provider/collection_store.py); it
  prunes again after every collection by itself.
"""
from __future__ import annotations

import logging

from twisted.internet import task
from twisted.internet.threads import deferToThreadPool

log = logging.getLogger("vmprovider.server")

POLL_SECONDS = 1.0


class BackgroundWork:
    def __init__(self, env, reactor, pool, *, interval: float = POLL_SECONDS):
        self.env = env
        self.reactor = reactor
        self.pool = pool
        self.interval = interval
        self._busy = False
        self._loop: task.LoopingCall | None = None

    def start(self) -> None:
        """On the reactor."""
        from provider.providers.hpvm_collect import collection_service
        collection_service(self.env).prune_soon()
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=False).addErrback(
            lambda f: log.error("job polling stopped: %s", f.getTraceback()))

    def _tick(self) -> None:
        if self._busy:
            return
        self._busy = True
        d = deferToThreadPool(self.reactor, self.pool, self._periodic)
        d.addErrback(lambda f: log.error("the periodic work failed: %s", f.getTraceback()))

        def free(_):
            self._busy = False
        d.addBoth(free)

    def _periodic(self) -> None:
        """In a worker thread: jobs advance, then the model's tick (Agent.settle) persists
        what its clock decided. One failing does not stop the other."""
        from provider.providers.hpvm_jobs import job_manager
        from provider.providers.hpvm_workload import settle_model
        try:
            job_manager(self.env).poll()
        finally:
            settle_model(self.env)

    def stop(self) -> None:
        """Stop polling and the collection worker (a running collection is cancelled and
        leaves nothing behind)."""
        from twisted.python.threadable import isInIOThread
        loop, self._loop = self._loop, None
        if loop is not None:
            def halt():
                if loop.running:
                    loop.stop()
            halt() if isInIOThread() else self.reactor.callFromThread(halt)
        from provider.providers.hpvm_collect import collection_service
        collection_service(self.env).shutdown()
