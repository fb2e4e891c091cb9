"""The CIMOM resource on /cimom: authentication, DSP0200 headers, and the worker hand-off.

On the reactor thread: method check, who is asking (client certificate or HTTP Basic, with
the verified-credentials cache), header checks, and writing the reply. Password hashing,
parsing, dispatch and serialization run in the worker pool. A refused login's 401 is held
back with `callLater` when the source has been failing; nothing sleeps.
"""
from __future__ import annotations

import ipaddress
import logging
import time

from twisted.internet import task
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.web import pages, resource, server

from provider.auth import Authenticator, FailureThrottle, parse_basic
from provider.http.headers import (CIM_MAPPING_URI, HTTPFault, declared_mpost_namespace,
                                   read_cim_headers)
from provider.http.pipeline import Pipeline, Reply

log = logging.getLogger("vmprovider.http")

# Methods HTTP defines that /cimom does not allow (405 with Allow); anything else is 501.
KNOWN_METHODS = frozenset((b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH",
                           b"TRACE", b"CONNECT"))
ALLOW = b"POST, M-POST"
SERVER_NAME = b"vmprovider"


def _text(request, status: int, text: str, *, cim_error: str | None = None,
          prefix: str | None = None) -> None:
    body = (text + "\n").encode("utf-8", "replace")
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    request.setHeader(b"Content-Length", str(len(body)).encode())
    if cim_error:
        request.setHeader(f"{prefix}-CIMError" if prefix else "CIMError", cim_error)
    request.write(body)
    request.finish()


class CIMOMResource(resource.Resource):
    isLeaf = True

    def __init__(self, *, pipeline: Pipeline, authenticator: Authenticator,
                 throttle: FailureThrottle, pool, reactor, realm: str = "vmprovider",
                 cert_map=None):
        super().__init__()
        self.pipeline = pipeline
        self.authenticator = authenticator
        self.throttle = throttle
        self.pool = pool
        self.reactor = reactor
        self.realm = realm
        self.cert_map = cert_map

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
                _text(request, 500, "internal server error")
        return server.NOT_DONE_YET

    @staticmethod
    def _source(request) -> str:
        """The peer address; IPv4 clients of a dual-stack socket appear as plain IPv4, so the
        failed-login record and the audit log name them one way."""
        host = getattr(request.getClientAddress(), "host", "") or ""
        if host.startswith("::ffff:"):
            try:
                mapped = ipaddress.IPv6Address(host).ipv4_mapped
            except ValueError:
                mapped = None
            if mapped is not None:
                return str(mapped)
        return host

    # -- authentication ---------------------------------------------------------------------
    def _certificate_principal(self, request, source):
        if self.cert_map is None:
            return None
        try:
            peer = request.channel.transport.getPeerCertificate()
        except Exception:
            return None
        if peer is None:
            return None
        user = self.cert_map.user_for(peer.to_cryptography())
        if user is None:
            return None
        return self.authenticator.for_certificate_user(user, source)

    def _authenticate(self, request, started, gone) -> None:
        source = self._source(request)
        principal = self._certificate_principal(request, source)
        if principal is not None:
            self._serve(request, principal, started, gone)
            return
        creds = parse_basic(request.getHeader(b"Authorization"))
        if creds is None:
            self._challenge(request, "authentication required")
            return
        user, password = creds
        principal = self.authenticator.cached(user, password, source)
        if principal is not None:
            self._serve(request, principal, started, gone)
            return
        wait = self.throttle.wait_before_check(source)
        if wait > 0:
            d = task.deferLater(self.reactor, wait, deferToThreadPool, self.reactor, self.pool,
                                self.authenticator.verify, user, password, source)
        else:
            d = deferToThreadPool(self.reactor, self.pool, self.authenticator.verify,
                                  user, password, source)

        def checked(principal):
            if gone:
                return
            if principal is None:
                delay = self.throttle.failed(source)
                log.warning("failed login for user %r from %s", user, source)
                if delay > 0:
                    self.reactor.callLater(delay, self._late_challenge, request, gone)
                else:
                    self._challenge(request, "invalid user name or password")
                return
            self.throttle.succeeded(source)
            self._serve(request, principal, started, gone)

        d.addCallback(checked)
        d.addErrback(self._internal_error, request, gone)

    def _late_challenge(self, request, gone) -> None:
        if not gone and not request.finished:
            self._challenge(request, "invalid user name or password")

    def _challenge(self, request, text: str) -> None:
        # pywbem looks for "Basic" case-sensitively: this header is written by hand.
        request.setHeader(b"WWW-Authenticate", f'Basic realm="{self.realm}"'.encode())
        _text(request, 401, text)

    # -- the request proper ------------------------------------------------------------------
    def _serve(self, request, principal, started, gone) -> None:
        try:
            headers = read_cim_headers(request, mpost=request.method == b"M-POST")
        except HTTPFault as fault:
            prefix = declared_mpost_namespace(request) if request.method == b"M-POST" else None
            _text(request, fault.status, fault.message, cim_error=fault.cim_error,
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
                _text(request, 500, "internal server error")
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
