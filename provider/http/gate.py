"""Who is asking: the one admission procedure of every resource on the site (/cimom,
/collections), so a client certificate, HTTP Basic, the verified-credentials cache and the
failed-login slowdown mean the same everywhere.

On the reactor thread: the certificate or Basic header and the cache. A password that is
not cached is verified (scrypt) in the worker pool; a source that keeps failing waits
before its check and before its 401 (`callLater`), so nothing sleeps on the reactor.
"""
from __future__ import annotations

import ipaddress
import logging
from typing import Callable

from twisted.internet import task
from twisted.internet.threads import deferToThreadPool

from provider.auth import Authenticator, FailureThrottle, parse_basic
from provider.messages import Principal

log = logging.getLogger("vmprovider.http")

SERVER_NAME = b"vmprovider"


def client_source(request) -> str:
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


def write_text(request, status: int, text: str, *, cim_error: str | None = None,
               prefix: str | None = None) -> None:
    """A short plain-text answer (401, 404, 413...), with a DSP0200 CIMError header if given."""
    body = (text + "\n").encode("utf-8", "replace")
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    request.setHeader(b"Content-Length", str(len(body)).encode())
    if cim_error:
        request.setHeader(f"{prefix}-CIMError" if prefix else "CIMError", cim_error)
    request.write(body)
    request.finish()


class Gate:
    def __init__(self, *, authenticator: Authenticator, throttle: FailureThrottle, pool,
                 reactor, realm: str = "vmprovider", cert_map=None):
        self.authenticator = authenticator
        self.throttle = throttle
        self.pool = pool
        self.reactor = reactor
        self.realm = realm
        self.cert_map = cert_map

    def admit(self, request, gone: list, serve: Callable[[Principal], None],
              failed: Callable) -> None:
        """Call `serve(principal)` on the reactor once the user is known, or answer 401.
        `gone` becomes non-empty when the client goes away; `failed(failure)` gets any
        unexpected error of the verification."""
        source = client_source(request)
        cert_user = self._certificate_user(request)
        if cert_user is not None:
            # The user record may have to be reread and a PAM user's OS groups come from
            # NSS (possibly LDAP): both block, so they are looked up in the pool.
            d = deferToThreadPool(self.reactor, self.pool,
                                  self.authenticator.for_certificate_user, cert_user, source)

            def mapped(principal):
                if gone:
                    return
                if principal is not None:
                    serve(principal)
                else:
                    self._basic(request, gone, source, serve, failed)
            d.addCallback(mapped)
            d.addErrback(failed)
            return
        self._basic(request, gone, source, serve, failed)

    def _basic(self, request, gone: list, source: str, serve, failed) -> None:
        creds = parse_basic(request.getHeader(b"Authorization"))
        if creds is None:
            self.challenge(request, "authentication required")
            return
        user, password = creds
        principal = self.authenticator.cached(user, password, source)
        if principal is not None:
            serve(principal)
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
                    self.challenge(request, "invalid user name or password")
                return
            self.throttle.succeeded(source)
            serve(principal)

        d.addCallback(checked)
        d.addErrback(failed)

    def challenge(self, request, text: str) -> None:
        # pywbem looks for "Basic" case-sensitively: this header is written by hand.
        request.setHeader(b"WWW-Authenticate", f'Basic realm="{self.realm}"'.encode())
        write_text(request, 401, text)

    def _late_challenge(self, request, gone) -> None:
        if not gone and not request.finished:
            self.challenge(request, "invalid user name or password")

    def _certificate_user(self, request) -> str | None:
        """The user the client certificate is mapped to (in memory: fine on the reactor)."""
        if self.cert_map is None:
            return None
        try:
            peer = request.channel.transport.getPeerCertificate()
        except Exception:
            return None
        if peer is None:
            return None
        return self.cert_map.user_for(peer.to_cryptography())
