"""Owns HAProxy's built-in error responses and how rule replies become bytes.

The pages are what HAProxy 2.6 answers byte for byte (status line, the three
headers, the short HTML body); ``errorfile`` contents replace them per proxy.
A reply keeps the client connection alive unless the error itself closes it
(400, 408, and errors raised before a request could be framed).  `mux_error` is the
other shape of the 400/408 pages, the one HAProxy's HTTP/1 layer sends itself when it
cannot frame a request or the client is too slow.
"""

from __future__ import annotations

from minilb.rules.txn import Reply

#: status -> (reason phrase, sentence of the HTML body)
ERROR_TEXTS: dict[int, tuple[str, str]] = {
    200: ("OK", "Service ready."),
    400: ("Bad request", "Your browser sent an invalid request."),
    401: ("Unauthorized", "You need a valid user and password to access this content."),
    403: ("Forbidden", "Request forbidden by administrative rules."),
    404: ("Not Found", "The resource could not be found."),
    405: (
        "Method Not Allowed",
        "A request was made of a resource using a request method not supported by that resource",
    ),
    407: ("Unauthorized", "You need a valid user and password to access this content."),
    408: ("Request Time-out", "Your browser didn't send a complete request in time."),
    410: ("Gone", "The resource is no longer available and will not be available again."),
    413: ("Payload Too Large", "The request entity exceeds the maximum allowed."),
    425: ("Too Early", "Your browser sent early data."),
    429: ("Too Many Requests", "You have sent too many requests in a given amount of time."),
    500: ("Internal Server Error", "An internal server error occurred."),
    501: (
        "Not Implemented",
        ".The server does not support the functionality required to fulfill the request.",
    ),
    502: ("Bad Gateway", "The server returned an invalid or incomplete response."),
    503: ("Service Unavailable", "No server is available to handle this request."),
    504: ("Gateway Time-out", "The server didn't respond in time."),
}

#: Reason phrases for statuses without an error page (http-request return, set-status).
REASONS: dict[int, str] = {
    100: "Continue",
    101: "Switching Protocols",
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    413: "Payload Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    425: "Too Early",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


def reason_phrase(status: int) -> str:
    if status in ERROR_TEXTS:
        return ERROR_TEXTS[status][0]
    return REASONS.get(status, "Unknown")


def error_body(status: int) -> bytes:
    """The HTML body HAProxy sends for ``status`` (falls back to the 500 page's shape)."""
    reason, sentence = ERROR_TEXTS.get(status, (reason_phrase(status), "An internal server error occurred."))
    return f"<html><body><h1>{status} {reason}</h1>\n{sentence}\n</body></html>\n".encode()


def _render(status: int, close: bool) -> bytes:
    body = error_body(status)
    head = (
        f"HTTP/1.1 {status} {reason_phrase(status)}\r\n"
        f"content-length: {len(body)}\r\n"
        "cache-control: no-cache\r\n"
        "content-type: text/html\r\n"
    )
    if close:
        head += "connection: close\r\n"
    return head.encode() + b"\r\n" + body


_CACHE: dict[tuple[int, bool], bytes] = {}


#: HAProxy's own pages for these statuses always close the connection.
CLOSING_STATUSES = frozenset({400, 408})


def error_response(status: int, close: bool = False) -> bytes:
    """The complete HAProxy error response for ``status`` (cached, it is on hot paths)."""
    close = close or status in CLOSING_STATUSES
    key = (status, close)
    raw = _CACHE.get(key)
    if raw is None:
        raw = _CACHE[key] = _render(status, close)
    return raw


def error_reply(status: int, errorfiles: dict[int, bytes] | None = None) -> Reply:
    """A `Reply` for ``status``: the proxy's errorfile if it has one, else HAProxy's page."""
    if errorfiles and status in errorfiles:
        return Reply(status=status, raw=errorfiles[status])
    return Reply(status=status, raw=error_response(status))


_MUX_ERRORS: dict[int, bytes] = {}


def mux_error(status: int) -> bytes:
    """The page HAProxy's HTTP/1 layer itself sends when it cannot frame a request
    (400) or the client is too slow to send one (408): the body of `error_response`
    with capitalised header names, in another order, always with ``Connection: close``."""
    cached = _MUX_ERRORS.get(status)
    if cached is None:
        body = error_body(status)
        cached = _MUX_ERRORS[status] = (
            f"HTTP/1.1 {status} {reason_phrase(status)}\r\n"
            f"Content-length: {len(body)}\r\n"
            "Cache-Control: no-cache\r\n"
            "Connection: close\r\n"
            "Content-Type: text/html\r\n\r\n"
        ).encode() + body
    return cached
