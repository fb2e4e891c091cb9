"""The CIMOM resource on /cimom: authentication, DSP0200 headers, and the worker hand-off.

On the reactor thread: method check, who is asking (client certificate or HTTP Basic, with
the verified-credentials cache), header checks, and writing the reply. Password hashing,
parsing, dispatch and serialization run in the worker pool. A refused login's 401 is held
back with `callLater` when the source has been failing; nothing sleeps.
"""
from __future__ import annotations

import logging
import time

from twisted.python.failure import Failure
from twisted.web import pages, resource, server

from provider.auth import Authenticator, FailureThrottle
from provider.http.gate import SERVER_NAME, Gate, write_text
from provider.http.headers import (CIM_MAPPING_URI, HTTPFault, declared_mpost_namespace,
                                   read_cim_headers)
from provider.http.pipeline import Pipeline, Reply

log = logging.getLogger("vmprovider.http")

# Methods HTTP defines that /cimom does not allow (405 with Allow); anything else is 501.
KNOWN_METHODS = frozenset((b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH",
                           b"TRACE", b"CONNECT"))
ALLOW = b"POST, M-POST"


class CIMOMResource(resource.Resource):
    isLeaf = True

    def __init__(self, *, pipeline: Pipeline, authenticator: Authenticator,
                 throttle: FailureThrottle, pool, reactor, realm: str = "vmprovider",
                 cert_map=None):
        super().__init__()
        self.pipeline = pipeline
        self.pool = pool
        self.reactor = reactor
        self.gate = Gate(authenticator=authenticator, throttle=throttle, pool=pool,
                         reactor=reactor, realm=realm, cert_map=cert_map)

    # -- entry ------------------------------------------------------------------------------
    def render(self, request):
        request.setHeader(b"Server", SERVER_NAME)   # not Twisted's name and version
        method = request.method
        if method not in (b"POST", b"M-POST"):
            request.setHeader(b"Allow", ALLOW)
            if method in KNOWN_METHODS:
                request.setResponseCode(405)
                return b"only POST and M-POST are allowed on /cimom\n"
            request.setResponseCode(501)
            return b"method not implemented\n"
        started = time.monotonic()
        gone = []
        request.notifyFinish().addErrback(lambda _f: gone.append(True))
        try:
            self._authenticate(request, started, gone)
        except Exception:
            log.exception("unexpected error handling a request")
            if not gone and not request.finished:
                write_text(request, 500, "internal server error")
        return server.NOT_DONE_YET

    # -- authentication ---------------------------------------------------------------------
    def _authenticate(self, request, started, gone) -> None:
        self.gate.admit(request, gone,
                        lambda principal: self._serve(request, principal, started, gone),
                        lambda failure: self._internal_error(failure, request, gone))

    # -- the request proper ------------------------------------------------------------------
    def _serve(self, request, principal, started, gone) -> None:
        try:
            headers = read_cim_headers(request, mpost=request.method == b"M-POST")
        except HTTPFault as fault:
            prefix = declared_mpost_namespace(request) if request.method == b"M-POST" else None
            write_text(request, fault.status, fault.message, cim_error=fault.cim_error,
                  prefix=prefix)
            return
        request.content.seek(0)
        body = request.content.read()
        # The pool directly rather than deferToThreadPool: the same two hand-offs without a
        # Deferred and its callback chain on every request.
        finish, call_from_thread = self._finish, self.reactor.callFromThread

        def done(ok, result):                       # in the worker
            call_from_thread(finish, ok, result, request, headers, started, gone)

        self.pool.callInThreadWithCallback(done, self.pipeline.run, body, headers, principal)

    def _finish(self, ok: bool, result, request, headers, started, gone) -> None:
        """On the reactor: the worker's Reply (ok) or Failure."""
        if not ok:
            self._internal_error(result, request, gone)
            return
        try:
            self._reply(result, request, headers, started, gone)
        except Exception:
            self._internal_error(Failure(), request, gone)

    def _reply(self, reply: Reply, request, headers, started, gone) -> None:
        if gone or request.finished:
            return          # the client went away: nothing to write to
        ns = headers.mpost_ns
        request.setResponseCode(reply.status)
        request.setHeader(b"Content-Type", reply.content_type)
        request.setHeader(b"Content-Length", b"%d" % len(reply.body))
        if ns:
            request.setHeader(b"Ext", b"")
            request.setHeader(b"Man", f"{CIM_MAPPING_URI};ns={ns}".encode())
            request.setHeader(b"Cache-Control", b"no-cache")
        if reply.status == 200:
            request.setHeader(f"{ns}-CIMOperation" if ns else b"CIMOperation",
                              b"MethodResponse")
        if reply.cim_error:
            request.setHeader(headers.prefixed("CIMError"),
                              reply.cim_error.encode("latin-1", "replace"))
        request.setHeader(b"WBEMServerResponseTime",
                          b"%d" % int((time.monotonic() - started) * 1_000_000))
        request.write(reply.body)
        request.finish()

    def _internal_error(self, failure, request, gone) -> None:
        log.error("unexpected error serving a request: %s",
                  failure.getTraceback() if hasattr(failure, "getTraceback") else failure)
        if not gone and not request.finished:
            try:
                write_text(request, 500, "internal server error")
            except Exception:
                log.exception("cannot send the 500 answer")


class RootResource(resource.Resource):
    """/ -> 404 for everything but /cimom."""

    def __init__(self, cimom: CIMOMResource):
        super().__init__()
        self.putChild(b"cimom", cimom)

    def getChild(self, path, request):
        request.setHeader(b"Server", SERVER_NAME)
        return pages.notFound("Not Found", "CIM operations are served on /cimom")
