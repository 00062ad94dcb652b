"""Owns the responses rules make up (``deny``, ``tarpit``, ``return``, ``redirect``):
HAProxy's reason phrases for any status, the header order HAProxy writes, and
`ReplyTemplate`, compiled once per rule, that turns into a `Reply` per request.

A `Reply` built here either has ``raw`` (an errorfile or HAProxy's error page,
sent as is) or ``status``, ``reason`` and ``headers`` complete and in HAProxy's
order, ``content-length`` included, plus ``body``: the adapter writes the status
line, the headers, ``connection: close`` as the last header when it closes the
connection (HAProxy does so for HTTP/1.0 clients too), a blank line and the body.
`wire_bytes` renders it that way.  Constant replies are built once at compile time.
Observed bytes: tests/data/rules_haproxy_replies.json.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minilb.http.errors import error_reply
from minilb.rules.txn import Reply

#: HAProxy 2.6's reason phrases (http_get_reason); other codes get their class name
REASONS: dict[int, str] = {
    100: "Continue",
    101: "Switching Protocols",
    102: "Processing",
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-Authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    207: "Multi-Status",
    210: "Content Different",
    226: "IM Used",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    310: "Too many Redirects",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Time-out",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested range unsatisfiable",
    417: "Expectation failed",
    418: "I'm a teapot",
    421: "Misdirected Request",
    422: "Unprocessable Content",
    423: "Locked",
    424: "Method failure",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    449: "Retry With",
    450: "Blocked by Windows Parental Controls",
    451: "Unavailable For Legal Reasons",
    456: "Unrecoverable Error",
    499: "client has closed connection",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway or Proxy Error",
    503: "Service Unavailable",
    504: "Gateway Time-out",
    505: "HTTP Version not supported",
    506: "Variant also negotiate",
    507: "Insufficient storage",
    508: "Loop detected",
    509: "Bandwidth Limit Exceeded",
    510: "Not extended",
    511: "Network authentication required",
    520: "Web server is returning an unknown error",
}

_CLASS_REASONS = {1: "Informational", 2: "Success", 3: "Redirection", 4: "Client Error", 5: "Server Error"}


def reason_for(status: int) -> str:
    """The reason phrase HAProxy writes for ``status`` in replies it builds."""
    r = REASONS.get(status)
    if r is not None:
        return r
    return _CLASS_REASONS.get(status // 100, "Other")


def render(status: int, reason: str, headers: tuple[tuple[bytes, bytes], ...], body: bytes) -> bytes:
    head = [b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("latin-1"))]
    for k, v in headers:
        head.append(k + b": " + v + b"\r\n")
    head.append(b"\r\n")
    return b"".join(head) + body


def make_reply(
    status: int,
    headers: tuple[tuple[bytes, bytes], ...],
    body: bytes,
    reason: str | None = None,
    kind: str = "return",
) -> Reply:
    return Reply(status=status, headers=headers, body=body, reason=reason or reason_for(status), kind=kind)


def wire_bytes(reply: Reply, close: bool = False, version: str = "1.1", head: bool = False) -> bytes:
    """The bytes HAProxy 2.6 sends for ``reply`` to a client speaking HTTP/``version``:
    ``connection: close`` is added as the last header when the connection closes after
    it, ``connection: keep-alive`` to an HTTP/1.0 client that keeps it (error pages
    included); a ``head`` request gets no body."""
    if reply.raw is not None:
        raw = reply.raw
    else:
        raw = render(reply.status, reply.reason or reason_for(reply.status), reply.headers, reply.body)
    header_end = raw.find(b"\r\n\r\n")
    if header_end < 0:
        return raw
    if close:
        if b"\r\nconnection:" not in raw[:header_end].lower():
            raw = raw[:header_end] + b"\r\nconnection: close" + raw[header_end:]
    elif version == "1.0":
        raw = raw[:header_end] + b"\r\nconnection: keep-alive" + raw[header_end:]
    if head:
        raw = raw[: raw.find(b"\r\n\r\n") + 4]
    return raw


HeaderFmt = tuple[bytes, Callable[[Any, Any], str], str | None]  # name, render, constant


class ReplyTemplate:
    """What a ``return``/``deny``/``tarpit`` rule answers, compiled once.

    kind: ``errorfile`` (``raw`` ready-made), ``default`` (the proxy's error page for
    the status), or ``payload`` (content-type, body, extra headers; the body or
    header values may be log-format strings rendered per request).
    """

    def __init__(
        self,
        status: int,
        kind: str,
        errorfiles: dict[int, bytes] | None = None,
        raw: bytes | None = None,
        content_type: str | None = None,
        body: bytes | Callable[[Any, Any], str] = b"",
        headers: list[HeaderFmt] | None = None,
        delay_ms: int = 0,
        reply_kind: str = "return",
    ):
        self.status = status
        self.delay_ms = delay_ms
        self.reply_kind = reply_kind  # `Reply.kind` of what it builds
        headers = headers or []
        self._const: Reply | None = None
        self._body_fn: Callable[[Any, Any], str] | None = None
        if kind == "errorfile":
            assert raw is not None
            self._const = Reply(status=status, raw=raw, delay_ms=delay_ms, kind=reply_kind)
        elif kind == "default":
            r = error_reply(status, errorfiles)
            self._const = Reply(status=status, raw=r.raw, delay_ms=delay_ms, kind=reply_kind)
        else:
            self._ctype = content_type.encode("latin-1") if content_type else None
            self._headers = headers
            dynamic = callable(body) or any(c is None for _, _, c in headers)
            if not dynamic:
                assert isinstance(body, bytes)
                hdrs = tuple((n, c.encode("latin-1")) for n, _, c in headers if c is not None)
                self._const = self._assemble(hdrs, body)
            else:
                self._body_fn = body if callable(body) else None
                self._body_const = body if isinstance(body, bytes) else b""

    def _assemble(self, hdrs: tuple[tuple[bytes, bytes], ...], body: bytes) -> Reply:
        out = list(hdrs)
        out.append((b"content-length", b"%d" % len(body)))
        if self._ctype is not None and body:
            out.append((b"content-type", self._ctype))
        return Reply(
            status=self.status,
            headers=tuple(out),
            body=body,
            reason=reason_for(self.status),
            delay_ms=self.delay_ms,
            kind=self.reply_kind,
        )

    def build(self, sess: Any, txn: Any) -> Reply:
        const = self._const
        if const is not None:
            return const
        body = self._body_const
        if self._body_fn is not None:
            body = self._body_fn(sess, txn).encode("latin-1", "replace")
        hdrs = tuple(
            (n, (c if c is not None else fn(sess, txn)).encode("latin-1", "replace"))
            for n, fn, c in self._headers
        )
        return self._assemble(hdrs, body)
