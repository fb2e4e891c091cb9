"""What the server does without a client asking: jobs advance and archives are pruned.

* About once a second `job_manager(env).poll()` runs in the worker pool (a LoopingCall
  only hands it over; a poll still running when the next tick comes is not doubled), so a
  graceful stop's TimeoutPeriod acts and finished jobs expire even when nobody reads them.
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
        from provider.providers.hpvm_jobs import job_manager
        self._busy = True
        d = deferToThreadPool(self.reactor, self.pool, job_manager(self.env).poll)
        d.addErrback(lambda f: log.error("polling the jobs failed: %s", f.getTraceback()))

        def free(_):
            self._busy = False
        d.addBoth(free)

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
