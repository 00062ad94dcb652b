"""httplog lines as HAProxy 2.6 writes them, and the log sinks."""

from __future__ import annotations

import os
import re

from minilb.config.model import LogTarget, Timeouts
from minilb.errors import BUILTIN
from minilb.http.log import format_connect, log_date, make_sink
from tests.support.http import Harness, proxy, server_model

DATE = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3}"


class Sink:
    def __init__(self):
        self.lines = []

    def emit(self, line, level="info"):
        self.lines.append(line)


def harness(**kw):
    sink = Sink()
    px = proxy(servers=[server_model()], httplog=True, **kw)
    return Harness(px, sink=sink), sink


def test_success_line_matches_haproxy_layout():
    h, sink = harness()
    c, ct = h.client(src="127.0.0.1", port=42076)
    c.dataReceived(b"GET /a?b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    h.reactor.advance(0.003)
    conn, st = h.connector.succeed()
    h.reactor.advance(0.002)
    conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    (line,) = sink.lines
    # e.g. 127.0.0.1:42076 [21/Nov/2026:11:29:48.457] px px/s1 0/0/3/2/5 200 78 - - ---- 1/1/0/0/0 0/0 "GET /a?b HTTP/1.0"
    sent = len(ct.value())
    assert re.fullmatch(
        rf'127\.0\.0\.1:42076 \[{DATE}\] px px/s1 0/0/3/2/5 200 {sent} - - ---- 1/1/0/0/0 0/0 "GET /a\?b HTTP/1\.0"',
        line,
    ), line


def test_bad_request_line():
    h, sink = harness()
    c, ct = h.client(src="127.0.0.1", port=42080)
    c.dataReceived(b"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
    (line,) = sink.lines
    assert re.fullmatch(
        rf'127\.0\.0\.1:42080 \[{DATE}\] px px/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"',
        line,
    ), line


def test_request_timeout_line():
    h, sink = harness(timeouts=Timeouts(connect=1000, client=5000, server=5000, http_request=1000))
    c, ct = h.client(src="127.0.0.1", port=46008)
    h.reactor.advance(1.001)
    (line,) = sink.lines
    assert re.search(r"px px/<NOSRV> -1/-1/-1/-1/1001 408 0 - - cR-- 1/1/0/0/0 0/0 \"<BADREQ>\"$", line), line


def test_server_timeout_line():
    h, sink = harness(timeouts=Timeouts(connect=1000, client=5000, server=1000))
    c, ct = h.client()
    c.dataReceived(b"GET /x HTTP/1.1\r\n\r\n")
    conn, st = h.connector.succeed()
    h.reactor.advance(1.001)
    (line,) = sink.lines
    assert re.search(r" px px/s1 0/0/0/-1/1001 504 \d+ - - sH-- ", line), line


def test_no_sink_no_log_state():
    h = Harness()
    assert h.fe.sink is None and not h.fe.httplog
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    assert c.t_start is None  # no timestamps taken when nothing logs


def test_log_date_format():
    assert re.fullmatch(DATE, log_date(1763724588.457))


def test_connect_line():
    assert format_connect("127.0.0.1", 51826, "127.0.0.1", 27180, "fe", "http") == (
        "Connect from 127.0.0.1:51826 to 127.0.0.1:27180 (fe/HTTP)"
    )


def test_stdout_sink_raw_and_rfc3164(tmp_path):
    r, w = os.pipe()
    try:
        calls = []
        sink = make_sink([LogTarget(BUILTIN, "stdout", format="raw")], (), calls.append)
        target = sink.targets[0][0]
        target.fd = w
        sink.emit("line one")
        sink.emit("line two")
        assert len(calls) == 1  # one flush scheduled per batch
        calls[0]()
        assert os.read(r, 1000) == b"line one\nline two\n"
        sink = make_sink(
            [LogTarget(BUILTIN, "global")], (LogTarget(BUILTIN, "stderr", facility="local0"),), None
        )
        target = sink.targets[0][0]
        target.fd = w
        sink.emit("msg")
        assert re.fullmatch(
            rb"<134>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d haproxy\[\d+\]: msg\n", os.read(r, 1000)
        )
    finally:
        os.close(r)
        os.close(w)


def test_no_targets_no_sink():
    assert make_sink((), ()) is None


def test_one_line_per_request_when_a_reply_closes():
    from minilb.rules.txn import Reply
    from tests.support.http import FakeRules

    sink = Sink()
    reply = Reply(200, headers=((b"content-length", b"2"),), body=b"ok")
    h = Harness(
        proxy(servers=[server_model()], httplog=True),
        sink=sink,
        rules=FakeRules(http_request=lambda t: reply),
    )
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert len(sink.lines) == 1
    assert ct.value().endswith(b"connection: close\r\n\r\nok")


def test_dontlognull_skips_empty_connections_only():
    h, sink = harness(
        timeouts=Timeouts(connect=1000, client=5000, server=5000, http_request=1000), dontlognull=True
    )
    c, ct = h.client()
    h.reactor.advance(1.001)
    assert sink.lines == []
    c2, ct2 = h.client()
    c2.dataReceived(b"GET / HT")
    h.reactor.advance(1.001)
    assert len(sink.lines) == 1


def test_proxies_logging_to_stdout_share_one_batch():
    class Owner:
        def schedule(self, fn):
            pass

    owner = Owner()
    a = make_sink([LogTarget(BUILTIN, "stdout")], (), owner.schedule)
    b = make_sink([LogTarget(BUILTIN, "stdout")], (), owner.schedule)
    assert a.targets[0][0] is b.targets[0][0]


def test_client_abort_while_connecting_is_logged_cc():
    h, sink = harness()
    c, ct = h.client()
    c.dataReceived(b"GET /x HTTP/1.1\r\n\r\n")
    c.connectionLost(None)
    (line,) = sink.lines
    assert " CC-- " in line and '"GET /x HTTP/1.1"' in line
    h.connector.succeed()  # the late connection is closed, not leaked
    assert h.server().cur_conns == 0
