"""The HTTP site: keep-alive HTTP/1.1, an idle timeout, and a request-size limit enforced
while the body arrives (Content-Length checked before reading; chunked bodies counted chunk by
chunk), answered with 413 and a closed connection."""
from __future__ import annotations

from twisted.web import http, server

# Exact casing of the headers CIM clients read (they compare case-insensitively, but people and
# packet traces read them too). Twisted keeps a class-level table for unusual casings.
try:
    from twisted.web.http_headers import _NameEncoder
    _NameEncoder._caseMappings.update({
        b"Cimoperation": b"CIMOperation", b"Cimerror": b"CIMError",
        b"Wbemserverresponsetime": b"WBEMServerResponseTime",
    })
except (ImportError, AttributeError):   # cosmetic only
    pass

LINGER_SECONDS = 1.0       # after a 413, read and drop the rest briefly so the client sees it

_TOO_LARGE = (b"HTTP/1.1 413 Request Entity Too Large\r\n"
              b"Content-Type: text/plain; charset=utf-8\r\n"
              b"Connection: close\r\nContent-Length: %d\r\n\r\n%s")


class LimitedRequest(server.Request):
    """Counts body bytes as they arrive; past the limit, stops storing and refuses."""

    _received = 0
    _refused = False

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.channel.site.max_request_bytes:
            self._refused = True
            self.channel.refuse_too_large()
            return
        self.content.write(data)


class LimitedChannel(http.HTTPChannel):
    """Also bounds the time one request may take to arrive: the idle timeout restarts with
    every byte, so without this a client trickling a byte a minute holds a connection
    forever. From a request's first byte, all of it must be in within `idle_timeout`."""

    _refusing = False
    _read_deadline = None

    def allHeadersReceived(self):
        limit = self.site.max_request_bytes
        if self.length is not None and self.length > limit:
            self.refuse_too_large()
            return
        super().allHeadersReceived()

    def refuse_too_large(self) -> None:
        if self._refusing:
            return
        self._refusing = True
        text = (f"request body larger than {self.site.max_request_bytes} bytes\n").encode()
        self.transport.write(_TOO_LARGE % (len(text), text))
        self.setTimeout(None)
        self.callLater(LINGER_SECONDS, self.transport.loseConnection)

    def dataReceived(self, data: bytes) -> None:
        if self._refusing:
            return           # drop the rest of an oversized request
        if self._read_deadline is None and not self._handlingRequest:
            self._read_deadline = self.callLater(self.site.timeOut, self._too_slow)
        super().dataReceived(data)

    def allContentReceived(self):
        self._cancel_deadline()
        super().allContentReceived()

    def _cancel_deadline(self) -> None:
        if self._read_deadline is not None:
            if self._read_deadline.active():
                self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        self._refusing = True
        body = b"request not received in time\n"
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                             b"Content-Type: text/plain; charset=utf-8\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self._cancel_deadline()
        super().connectionLost(reason)

    def rawDataReceived(self, data: bytes) -> None:
        if self._refusing:
            return
        super().rawDataReceived(data)


class CIMSite(server.Site):
    """`timeout` is the idle timeout of a connection between requests."""

    protocol = LimitedChannel
    requestFactory = LimitedRequest

    def __init__(self, resource, *, max_request_bytes: int, idle_timeout: float,
                 reactor=None):
        kwargs = {"reactor": reactor} if reactor is not None else {}
        # CIM bodies are XML: never let Twisted parse them as HTML form uploads (cost, memory)
        super().__init__(resource, timeout=idle_timeout, parsePOSTFormSubmission=False,
                         **kwargs)
        self.max_request_bytes = max_request_bytes
        self.displayTracebacks = False
        self.noisy = False
