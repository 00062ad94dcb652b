"""Owns the per-connection `Session` and per-request `Txn` that rules read and change,
and `Reply`, a response decided by a rule instead of a server.

This is the contract between the HTTP/TCP adapters (which fill these objects from
the wire and act on replies) and the rule engine (which only reads and edits
them).  Both are plain ``__slots__`` classes: one is created per connection and per
request, so they stay cheap.  Headers are kept as the bytes that came off the
wire; fetches decode lazily.
"""

from __future__ import annotations

import attrs

from minilb.http.parse import split_uri


class Session:
    """One client connection: addresses, TLS facts, and what tcp-request rules tracked."""

    __slots__ = (
        "src",
        "src_port",
        "dst",
        "dst_port",
        "ssl",
        "sni",
        "frontend",
        "stkctr",
        "vars",
        "now_ms",
        "req_data",
        "req_final",
        "tcp_rule_pos",
        "src_ip",
        "src_ip_of",
    )

    def __init__(
        self,
        src: str = "",
        src_port: int = 0,
        dst: str = "",
        dst_port: int = 0,
        frontend: str = "",
        ssl: bool = False,
        sni: str | None = None,
    ):
        self.src = src
        self.src_port = src_port
        self.dst = dst
        self.dst_port = dst_port
        self.frontend = frontend
        self.ssl = ssl
        self.sni = sni
        # stick counters tracked by tcp-request/http-request rules: index 0..2 -> tracker or None
        self.stkctr: list = [None, None, None]
        self.vars: dict[str, object] = {}  # sess.* variables
        self.now_ms = 0  # set by the adapter from its injected clock before rules run
        # tcp-request content inspection (see minilb.rules.payload): bytes received so far,
        # whether more may come, and the rule to resume at
        self.req_data = b""
        self.req_final = True
        self.tcp_rule_pos = 0
        # the `src` fetch's parsed address (an ipaddress object or None) and the `src`
        # text it was parsed from: filled on first use, parsed again if the adapter
        # replaces `src` (accept-proxy), so the fetch always reflects `src`
        self.src_ip: object = None
        self.src_ip_of: str | None = None


class Txn:
    """One HTTP request/response exchange.

    ``uri`` is the request target as received (bytes); ``path``/``query`` are
    derived from it (str, undecoded): given by the adapter, or, when it passes None
    for the path, split from ``uri`` the first time a rule reads or sets either.  ``headers`` is the ordered,
    mutable list of ``[name, value]`` byte pairs as received (names keep their case);
    rules edit it in place and the adapter serialises whatever it holds.
    """

    __slots__ = (
        "sess",
        "method",
        "uri",
        "_path",
        "_query",
        "version",
        "headers",
        "backend",
        "status",
        "resp_reason",
        "resp_headers",
        "vars",
        "stkctr",
        "server",
    )

    def __init__(
        self,
        sess: Session,
        method: str,
        uri: bytes,
        path: str | None,
        query: str | None,
        version: str,
        headers: list[list[bytes]],
    ):
        self.sess = sess
        self.method = method  # "GET"
        self.uri = uri  # b"/a?b=1"
        self._path = path  # "/a" (None: not split from uri yet)
        self._query = query  # "b=1" or None
        self.version = version  # "1.1"
        self.headers = headers
        self.backend: str | None = None
        self.status = 0  # response status once known (http-response rules)
        self.resp_reason: str | None = None  # reason phrase set by `set-status ... reason R`
        self.resp_headers: list[list[bytes]] = []
        self.vars: dict[str, object] = {}  # txn.* / req.* / res.* variables
        self.stkctr = sess.stkctr  # http-request track-sc* share the session's slots
        self.server: str | None = None

    def _split(self) -> None:
        self._path, self._query = split_uri(self.uri)

    @property
    def path(self) -> str:
        if self._path is None:
            self._split()
        return self._path

    @path.setter
    def path(self, value: str) -> None:
        if self._path is None:
            self._split()  # the query as received stays
        self._path = value

    @property
    def query(self) -> str | None:
        if self._path is None:
            self._split()
        return self._query

    @query.setter
    def query(self, value: str | None) -> None:
        if self._path is None:
            self._split()  # the path as received stays
        self._query = value

    def header(self, name: bytes) -> bytes | None:
        """The last value of header ``name`` (lower-case bytes), or None."""
        found = None
        for k, v in self.headers:
            if k.lower() == name:
                found = v
        return found


@attrs.frozen
class Reply:
    """A response produced by a rule (deny, return, redirect, tarpit, auth...).

    The adapter writes ``status`` with ``reason``, the ``headers`` and ``body``; for a
    tarpit it waits ``delay_ms`` (``timeout tarpit``) first.  ``raw`` is a complete
    HTTP response (from an errorfile) sent as-is when set.

    ``kind`` says what produced it, for the adapter's counters: ``"deny"``
    (``http-request deny``, ``http-response deny``), ``"tarpit"``, ``"return"``
    (``http-request return``, and the default), ``"redirect"``, ``"reject"``
    (`actions.REJECT_REPLY`: close without answering) or ``"error"`` (an error page
    minilb produces itself rather than a rule).  HAProxy counts a deny or a tarpit
    as an ``http_err`` of the tracked entries, never a ``return`` (even ``status 404``).
    """

    status: int
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    reason: str | None = None
    raw: bytes | None = None
    delay_ms: int = 0
    close: bool = False
    kind: str = "return"  # deny | tarpit | return | redirect | reject | error
