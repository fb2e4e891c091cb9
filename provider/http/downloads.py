"""GET /collections/<id>: the archive of a finished CollectSystemData job, admin only.

Served beside /cimom on the same port with the same authentication (client certificate or
HTTP Basic, the verified-credentials cache, the failed-login slowdown); a non-admin gets
403, no credentials 401. `<id>` is looked up in the collection index
(provider/collection_store.py); the file opened is the one the index names inside the
archive folder, never a path taken from the request, so anything else (an unknown id, a
`..`, an encoded slash, more path segments) is 404. Opening the file and the audit record
happen in the worker pool; the body is streamed by Twisted's `FileSender`, a producer that
sends the next chunk when the connection has room, so a slow client never makes the server
hold the whole archive in memory. (FileSender reads each 64 KB chunk of the local archive on
the reactor, as Twisted's own static file resource does.)
"""
from __future__ import annotations

import base64
import logging
import re

from twisted.internet.threads import deferToThreadPool
from twisted.protocols.basic import FileSender
from twisted.web import resource, server

from provider.http.gate import SERVER_NAME, Gate, write_text

log = logging.getLogger("vmprovider.http")

OPERATION = "DownloadCollection"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]")


class DownloadsResource(resource.Resource):
    isLeaf = True

    def __init__(self, *, store, authenticator, throttle, pool, reactor, audit=None,
                 realm: str = "vmprovider", cert_map=None):
        super().__init__()
        self.store = store
        self.pool = pool
        self.reactor = reactor
        self.audit = audit
        self.gate = Gate(authenticator=authenticator, throttle=throttle, pool=pool,
                         reactor=reactor, realm=realm, cert_map=cert_map)

    def render(self, request):
        request.setHeader(b"Server", SERVER_NAME)
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"Allow", b"GET, HEAD")
            request.setResponseCode(405)
            return b"only GET and HEAD are allowed on /collections\n"
        gone = []
        request.notifyFinish().addErrback(lambda _f: gone.append(True))
        try:
            self._authenticate(request, gone)
        except Exception:
            log.exception("unexpected error handling a download")
            if not gone and not request.finished:
                write_text(request, 500, "internal server error")
        return server.NOT_DONE_YET

    # -- who is asking (the same rules as /cimom) --------------------------------------------
    def _authenticate(self, request, gone) -> None:
        self.gate.admit(request, gone, lambda principal: self._serve(request, principal, gone),
                        lambda failure: self._internal_error(failure, request, gone))

    # -- the download --------------------------------------------------------------------------
    def _serve(self, request, principal, gone) -> None:
        # one path segment after /collections/, already %-decoded by Twisted
        cid = request.postpath[0].decode("utf-8", "replace") \
            if len(request.postpath) == 1 else "/".join(
                p.decode("utf-8", "replace") for p in request.postpath)
        d = deferToThreadPool(self.reactor, self.pool, self._open, principal, cid)
        d.addCallback(self._send, request, gone)
        d.addErrback(self._internal_error, request, gone)

    def _open(self, principal, cid: str):
        """In a worker: the collection and its open archive, or an HTTP refusal; audited."""
        item = f = None
        if principal.role != "admin":
            status, code, text = 403, 2, "only administrators may download collections"
        else:
            item = self.store.get(cid)
            f = self.store.open(item) if item is not None else None
            if f is None:
                item = None
                status, code, text = 404, 6, "no such collection"
            else:
                status, code, text = 200, 0, ""
        self._audit(principal, cid, item, code, text)
        return status, text, item, f

    def _audit(self, principal, cid: str, item, code: int, text: str) -> None:
        if self.audit is None:
            return
        target = f"/collections/{cid[:100]}" + (f" ({item.name})" if item is not None else "")
        try:
            self.audit.record(user=principal.user, source=principal.source,
                              operation=OPERATION, target=target, namespace="",
                              result=code, description=text)
        except Exception:
            log.exception("cannot write the audit record for a download by %s", principal.user)

    def _send(self, opened, request, gone) -> None:
        status, text, item, f = opened
        if gone or request.finished:
            if f is not None:
                f.close()
            return
        if f is None:
            write_text(request, status, text)
            return
        name = _SAFE_NAME.sub("_", item.name)
        digest = base64.b64encode(bytes.fromhex(item.sha256)).decode()
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", item.content_type.encode())
        request.setHeader(b"Content-Length", str(item.size).encode())
        request.setHeader(b"Content-Disposition", f'attachment; filename="{name}"'.encode())
        request.setHeader(b"Repr-Digest", f"sha-256=:{digest}:".encode())
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        if request.method == b"HEAD":
            f.close()
            request.finish()
            return
        done = FileSender().beginFileTransfer(f, request)

        def finished(_):
            f.close()
            if not gone and not request.finished:
                request.finish()

        def broken(failure):
            f.close()          # the client went away: FileSender was asked to stop
            log.info("download of collection %s stopped: %s", item.id,
                     failure.getErrorMessage())

        done.addCallbacks(finished, broken)

    def _internal_error(self, failure, request, gone) -> None:
        log.error("unexpected error serving a download: %s", failure.getTraceback())
        if not gone and not request.finished:
            try:
                write_text(request, 500, "internal server error")
            except Exception:
                log.exception("cannot send the 500 answer")
