"""Owns HTTP/1.x message framing for both sides of the proxy, on httptools (llhttp).

`RequestParser(sink, limits)` is fed client bytes and calls ``sink.request_head(head)``,
``sink.request_body(data)`` (de-chunked payload) and ``sink.request_end(trailers)``;
`ResponseParser(sink)` does the same for server bytes with ``response_head``,
``response_body`` and ``response_end``.  Unparsable or over-limit input raises
`HTTPError(400)` (the frontend answers HAProxy's 400 and closes), never a traceback.
An accepted protocol upgrade (``Connection: upgrade`` + ``Upgrade``, or CONNECT) makes
``feed`` return the offset where tunnelled bytes start.

It also owns how heads are written back out, as HAProxy 2.6 does on HTTP/1:
header names lower-cased, values untouched, the ``close``/``keep-alive`` tokens of
``Connection`` removed and replaced by what the proxy itself decided, everything
else forwarded as received (HAProxy 2.6 keeps ``Keep-Alive``, ``TE`` and
``Proxy-Connection`` as well as headers named in ``Connection``).  Pure: no Twisted.
"""

from __future__ import annotations

import httptools

from minilb.errors import HTTPError

__all__ = [
    "Limits",
    "RequestHead",
    "ResponseHead",
    "RequestParser",
    "ResponseParser",
    "request_head_bytes",
    "response_head_bytes",
    "chunk",
    "last_chunk",
    "split_uri",
]


class Limits:
    """Per-proxy framing limits: head size (tune.bufsize - tune.maxrewrite, as HAProxy
    keeps room for rewrites) and header count (tune.http.maxhdr)."""

    __slots__ = ("max_head", "max_headers")

    def __init__(self, max_head: int = 16384 - 1024, max_headers: int = 101):
        self.max_head = max_head
        self.max_headers = max_headers

    @classmethod
    def from_global(cls, g) -> Limits:
        return cls(max(1024, g.tune_bufsize - g.tune_maxrewrite), g.tune_http_maxhdr)


# Lengths of the header names framing cares about, to skip .lower() on all others:
# host(4) expect(6) upgrade(7) connection(10) content-length(14) transfer-encoding(17).
_INTERESTING_LENGTHS = frozenset((4, 6, 7, 10, 14, 17))


class RequestHead:
    """A framed request head.  ``headers`` is the received ``[name, value]`` byte pairs."""

    __slots__ = (
        "method",
        "uri",
        "version",
        "headers",
        "keep_alive",
        "upgrade",
        "chunked",
        "content_length",
        "expect_continue",
        "conn_tokens",
        "has_body",
    )

    def __init__(self, method, uri, version, headers, keep_alive, upgrade):
        self.method: str = method
        self.uri: bytes = uri
        self.version: str = version
        self.headers: list[list[bytes]] = headers
        self.keep_alive: bool = keep_alive
        self.upgrade: bool = upgrade
        self.chunked = False
        self.content_length: int | None = None
        self.expect_continue = False
        self.conn_tokens: tuple[bytes, ...] = ()
        self.has_body = False  # chunked, or a non-zero content-length


#: request methods as str without decoding each time
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT")}


class _Callbacks:
    """The callbacks one httptools parser calls (it looks each up once, by name)."""

    def __init__(self, **callbacks):
        self.__dict__.update(callbacks)


class _Parser:
    """What the request and response parsers share: header collection and limits."""

    __slots__ = (
        "sink",
        "_sink_end",
        "limits",
        "parser",
        "_url",
        "_headers",
        "_in_head",
        "_head_bytes",
        "_fed",
    )

    #: the status a malformed message gets (400 from a client, 502 from a server),
    #: and the words of its three framing errors
    _bad_status = 400
    _bad_words = ("bad message", "too many header fields", "head too large")

    def __init__(self, sink, limits: Limits | None):
        self.sink = sink
        self.limits = limits or Limits()
        self._url = b""
        self._headers: list[list[bytes]] = []
        self._in_head = False
        self._head_bytes = 0
        self._fed = 0

    # httptools callbacks -----------------------------------------------------------
    # ``_headers`` collects the head's fields; once the head is handed over it is a
    # new list that collects the trailers of a chunked body (no branch per field).
    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append([name, value])

    def _check_limits(self, fed: int) -> None:
        """Called at the end of a head: the head fits in the limits or it is a 400."""
        limits = self.limits
        if len(self._headers) > limits.max_headers:
            raise HTTPError(400, "too many headers")
        # Only measure exactly when the bytes fed could exceed the limit.
        if self._head_bytes + fed > limits.max_head:
            size = len(self._url) + 16 + sum(len(n) + len(v) + 4 for n, v in self._headers)
            if size > limits.max_head:
                raise HTTPError(400, "request head too large")

    def _callbacks(self, on_body, **more) -> _Callbacks:
        """What httptools calls: this parser's methods, except body bytes, which go
        straight to the sink's ``on_body`` (no frame of ours in between)."""
        return _Callbacks(
            on_message_begin=self.on_message_begin,
            on_url=self.on_url,
            on_header=self.on_header,
            on_headers_complete=self.on_headers_complete,
            on_body=on_body,
            on_message_complete=self.on_message_complete,
            **more,
        )

    def on_message_complete(self) -> None:
        trailers = self._headers  # the trailers of a chunked body, if any
        if trailers:
            self._headers = []
            self._sink_end(trailers)
        else:
            self._sink_end(None)

    # feeding -----------------------------------------------------------------------
    def _feed(self, data: bytes) -> int | None:
        try:
            self._fed = len(data)
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            return upgrade.args[0]
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if cause is not None:  # the sink's own exception (an HTTPError, or a bug)
                raise cause from None
            raise
        except httptools.HttpParserError as exc:
            raise HTTPError(self._bad_status, str(exc) or self._bad_words[0]) from None
        if len(self._headers) > self.limits.max_headers:  # trailers are bounded too
            raise HTTPError(self._bad_status, self._bad_words[1])
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head:
                raise HTTPError(self._bad_status, self._bad_words[2])
        return None

    @property
    def in_head(self) -> bool:
        """True while a head has started and is not complete (http-request timeout)."""
        return self._in_head

    def close(self) -> None:
        """The connection is gone: let go of the C parser (it holds bound methods of
        this object) and of the sink, so that parser, sink and connection are freed
        at once by reference counting instead of waiting for the cycle collector."""
        self.parser = None
        self.sink = None
        self._sink_end = None


class RequestParser(_Parser):
    """Frames requests from a client; pipelined requests are framed in order."""

    __slots__ = ()

    def __init__(self, sink, limits: Limits | None = None):
        super().__init__(sink, limits)
        self._sink_end = sink.request_end
        self.parser = httptools.HttpRequestParser(self._callbacks(sink.request_body))
        # Bytes after a request that closes the connection are ignored by the
        # frontend rather than being a parse error.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._headers = []
        self._url = b""

    def on_headers_complete(self) -> None:
        if (
            len(self._headers) > self.limits.max_headers
            or self._head_bytes + self._fed > self.limits.max_head
        ):
            self._check_limits(self._fed)
        self._in_head = False
        p = self.parser
        raw_method = p.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        headers = self._headers
        self._headers = []  # trailers, if any
        head = RequestHead(
            method, self._url, p.get_http_version(), headers, p.should_keep_alive(), p.should_upgrade()
        )
        # chunked / content_length / expect / connection tokens from the headers;
        # several Host headers that disagree are a 400, as HAProxy answers
        host = None
        for name, value in headers:
            if len(name) in _INTERESTING_LENGTHS:
                lname = name.lower()
                if lname == b"host":
                    if host is not None and host != value:
                        raise HTTPError(400, "several different Host headers")
                    host = value
                elif lname == b"transfer-encoding":
                    head.chunked = True
                elif lname == b"content-length":
                    head.content_length = int(value)  # llhttp already checked the digits
                elif lname == b"connection":
                    head.conn_tokens += tuple(t.strip().lower() for t in value.split(b","))
                elif lname == b"expect":
                    if value.lower() == b"100-continue":
                        head.expect_continue = True
        if head.chunked or head.content_length:
            head.has_body = True
        if method == "CONNECT":
            head.upgrade = True
        self.sink.request_head(head)

    #: feed(data): parse ``data``; returns the offset of tunnelled bytes after an
    #: upgrade request, raises `HTTPError(400)` on bad input.
    feed = _Parser._feed


class ResponseHead:
    """A framed response head from a server (its framing headers are read when the
    head is written out: `client_response_head`)."""

    __slots__ = (
        "status",
        "reason",
        "version",
        "headers",
        "keep_alive",
        "upgrade",
    )

    def __init__(self, status, reason, version, headers, keep_alive, upgrade):
        self.status: int = status
        self.reason: bytes = reason
        self.version: str = version
        self.headers: list[list[bytes]] = headers
        self.keep_alive: bool = keep_alive
        self.upgrade: bool = upgrade


class ResponseParser(_Parser):
    """Frames responses from a server (interim 1xx responses are heads of their own)."""

    __slots__ = ("_reason",)
    _bad_status = 502
    _bad_words = ("bad response", "too many response header fields", "response head too large")

    def __init__(self, sink, limits: Limits | None = None):
        super().__init__(sink, limits)
        self._sink_end = sink.response_end
        callbacks = self._callbacks(sink.response_body, on_status=self.on_status)
        self.parser = httptools.HttpResponseParser(callbacks)
        self._reason = b""

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._headers = []
        self._reason = b""

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_headers_complete(self) -> None:
        if len(self._headers) > self.limits.max_headers:
            raise HTTPError(502, "too many response headers")
        self._in_head = False
        p = self.parser
        headers = self._headers
        self._headers = []  # trailers, if any
        head = ResponseHead(
            p.get_status_code(),
            self._reason,
            p.get_http_version(),
            headers,
            p.should_keep_alive(),
            p.should_upgrade(),
        )
        self.sink.response_head(head)

    #: feed(data): parse ``data``; a 101 response returns the offset of tunnelled
    #: bytes.  Malformed responses raise `HTTPError(502)`.
    feed = _Parser._feed


# --------------------------------------------------------------------------- writing heads


def split_uri(uri: bytes) -> tuple[str, str | None]:
    """The path and query of a request target (origin-form or absolute-form), undecoded."""
    if uri[:1] != b"/" and b"://" in uri[:16]:
        rest = uri.split(b"://", 1)[1]
        slash = rest.find(b"/")
        uri = rest[slash:] if slash >= 0 else b"/"
    path, sep, query = uri.partition(b"?")
    return path.decode("latin-1"), (query.decode("latin-1") if sep else None)


# Header names as received -> the lower-cased ``name: `` that starts their line on
# the way out (bounded: names past the cap are lower-cased each time).  The framing
# names map to the very objects below, so an identity test tells them apart.
_CONNECTION = b"connection: "
_TRANSFER_ENCODING = b"transfer-encoding: "
_CONTENT_LENGTH = b"content-length: "
_FRAMING = frozenset((_CONNECTION, _TRANSFER_ENCODING, _CONTENT_LENGTH))
_INTERNED = {p: p for p in _FRAMING}
_PREFIXES: dict[bytes, bytes] = {}
MAX_CACHED_NAMES = 4096


def _prefix(name: bytes) -> bytes:
    prefix = name.lower() + b": "
    prefix = _INTERNED.get(prefix, prefix)
    if len(_PREFIXES) < MAX_CACHED_NAMES:
        _PREFIXES[name] = prefix
    return prefix


# (version, status, reason) -> status line (without its CRLF), bounded like the names
_STATUS_LINES: dict[tuple[str, int, bytes], bytes] = {}

#: what ends a head's lines when they are joined with CRLF: an empty line
_HEAD_END = (b"", b"")


def _status_line(version: str, status: int, reason: bytes) -> bytes:
    line = b"HTTP/%s %d %s" % (version.encode("ascii"), status, reason)
    if len(_STATUS_LINES) < 256:
        _STATUS_LINES[(version, status, reason)] = line
    return line


def _kept_connection_tokens(value: bytes) -> bytes:
    lvalue = value.lower()
    if lvalue == b"keep-alive" or lvalue == b"close":  # the usual whole value
        return b""
    kept = [t.strip() for t in value.split(b",") if t.strip().lower() not in (b"close", b"keep-alive", b"")]
    return b", ".join(kept)


def _write_headers(out: list[bytes], headers) -> None:
    """Append headers lower-cased, with close/keep-alive tokens dropped from Connection."""
    append = out.append
    for name, value in headers:
        lname = name.lower()
        if lname == b"connection":
            value = _kept_connection_tokens(value)
            if not value:
                continue
        append(b"%s: %s\r\n" % (lname, value))


# (method, version) -> the words around the target in a request line (without its
# CRLF), bounded
_REQUEST_LINES: dict[tuple[str, str], tuple[bytes, bytes]] = {}


def _request_line_parts(method: str, version: str) -> tuple[bytes, bytes]:
    parts = (method.encode("ascii") + b" ", b" HTTP/" + version.encode("ascii"))
    if len(_REQUEST_LINES) < 256:
        _REQUEST_LINES[(method, version)] = parts
    return parts


def request_head_bytes(
    method: str,
    uri: bytes,
    version: str,
    headers,
    add: list[tuple[bytes, bytes]] | None = None,
    connection: bytes | None = None,
) -> bytes:
    """The request head sent to a server.

    ``add`` are headers appended (``x-forwarded-for``); ``connection`` is the value of
    a ``connection`` header the proxy adds (``close`` for server-close/httpclose,
    ``keep-alive`` for an HTTP/1.0 request on a kept-alive server connection).
    """
    before, after = _REQUEST_LINES.get((method, version)) or _request_line_parts(method, version)
    out = [before + uri + after]
    append = out.append
    prefixes = _PREFIXES
    for name, value in headers:
        prefix = prefixes.get(name) or _prefix(name)
        if prefix is _CONNECTION:
            value = _kept_connection_tokens(value)
            if not value:
                continue
        append(prefix + value)  # the lines are joined with CRLF
    if add:
        for name, value in add:
            append(b"%s: %s" % (name, value))
    if connection is not None:
        append(b"connection: " + connection)
    out += _HEAD_END
    return b"\r\n".join(out)


def response_head_bytes(
    status: int,
    reason: bytes,
    headers,
    *,
    connection: bytes | None = None,
    add_chunked: bool = False,
) -> bytes:
    """The response head sent to a client (always ``HTTP/1.1``, as HAProxy answers)."""
    out = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    _write_headers(out, headers)
    if add_chunked:
        out.append(b"transfer-encoding: chunked\r\n")
    if connection is not None:
        out.append(b"connection: %s\r\n" % connection)
    out.append(b"\r\n")
    return b"".join(out)


def client_response_head(
    status: int,
    reason: bytes,
    headers,
    *,
    version: str = "1.1",
    no_body: bool,
    client_11: bool,
    closing: bool,
    keep_alive_token: bool,
) -> tuple[bytes, bool, bool, bool]:
    """The head of a server response as sent to the client, and how its body goes.

    As HAProxy 2.6: the status line keeps the server's HTTP version, header names
    are lower-cased, Connection's close/keep-alive tokens are dropped and replaced by
    what the proxy decided (``connection: close`` for an HTTP/1.1 client being closed,
    ``connection: keep-alive`` when ``keep_alive_token`` asks for it: HTTP/1.0 clients
    kept open).  One pass over the headers also finds the framing: a body that only
    the server's close delimits is relayed as is and closes the client connection.
    Returns ``(head, chunked, closing, eof_body)``.
    """
    out = [_STATUS_LINES.get((version, status, reason)) or _status_line(version, status, reason)]
    append = out.append
    chunked = False
    length = False
    prefixes = _PREFIXES
    for name, value in headers:
        prefix = prefixes.get(name) or _prefix(name)
        if prefix in _FRAMING:
            if prefix is _CONNECTION:
                value = _kept_connection_tokens(value)
                if not value:
                    continue
            elif prefix is _TRANSFER_ENCODING:
                chunked = True
            else:
                length = True
        append(prefix + value)  # the lines are joined with CRLF
    eof_body = not no_body and not chunked and not length
    if closing:
        if client_11:
            append(b"connection: close")
    elif eof_body:
        closing = True
    elif keep_alive_token:
        append(b"connection: keep-alive")
    out += _HEAD_END
    return b"\r\n".join(out), chunked and not no_body, closing, eof_body


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never the last-chunk: empty data gives b"")."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


def last_chunk(trailers=None) -> bytes:
    """The terminating chunk, with trailers when the received body had some."""
    if not trailers:
        return b"0\r\n\r\n"
    return b"0\r\n" + b"".join(b"%s: %s\r\n" % (n.lower(), v) for n, v in trailers) + b"\r\n"
