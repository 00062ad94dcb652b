"""Counters that depend on what the traffic did (TCP proxying, server answers,
unreachable servers, bytes, tarpits), server persistence through ``stick on``, and
the tcp-request connection/content/session trackers, compared with real HAProxy
2.6 on one configuration (see `tests.support.conformance`).

One pair of processes serves the module; every test has its own frontend and table
(or its own keys of a shared one).  The origin is a frontend of the same
configuration (``frontend origin``), so each side proxies to its own copy; what no
configuration makes a server do (say nothing, close before or in the middle of an
answer, answer garbage) comes from `MisbehavingOrigin`, one small threaded server
both sides share.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading

import pytest

from tests.conftest import requires_haproxy
from tests.support.conformance import CLOSED, Cli, Hold, Pair, Release, Send, ShowTable, assert_same

pytestmark = [pytest.mark.integration, pytest.mark.interop, requires_haproxy]

CONFIG = """\
global
    stats socket ipv4@127.0.0.1:@STATS@ level admin
defaults
    mode http
    timeout connect 300ms
    timeout client 5s
    timeout server 5s

frontend tcpfe
    mode tcp
    bind 127.0.0.1:@TCP@
    stick-table type ip size 100 expire 10s store conn_cnt,conn_cur,conn_rate(2s),sess_cnt,sess_rate(2s),bytes_in_cnt,bytes_out_cnt,bytes_in_rate(2s),bytes_out_rate(2s)
    tcp-request connection track-sc0 src
    tcp-request connection reject if { sc_conn_rate(0) gt 3 }
    default_backend tcpbe
backend tcpbe
    mode tcp
    server o 127.0.0.1:@ORIGIN@

frontend xff
    bind 127.0.0.1:@XFF@
    stick-table type ipv6 size 100 expire 10s store http_req_cnt,http_req_rate(2s),sess_cnt
    http-request track-sc0 req.hdr_ip(x-forwarded-for)
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 2 }
    default_backend app

frontend fails
    bind 127.0.0.1:@FAILS@
    stick-table type ip size 100 expire 10s store http_req_cnt,http_fail_cnt,http_fail_rate(2s),http_err_cnt
    http-request track-sc0 src
    http-request deny deny_status 503 if { sc_http_fail_rate(0) gt 1 }
    use_backend header_rule if { path_beg /header }
    use_backend path_rule if { path_beg /rewritten }
    default_backend app
backend header_rule
    http-request set-header X-Fail 1
    server o 127.0.0.1:@ORIGIN@
backend path_rule
    http-request set-path /fail
    server o 127.0.0.1:@ORIGIN@

frontend unreachable
    bind 127.0.0.1:@DEADFE@
    stick-table type ip size 100 expire 10s store http_req_cnt,http_fail_cnt,http_err_cnt
    http-request track-sc0 src
    default_backend dead
backend dead
    server nothing 127.0.0.1:@DEAD@

frontend content
    bind 127.0.0.1:@CONTENT@
    tcp-request inspect-delay 500ms
    tcp-request content track-sc0 src
    stick-table type ip size 100 expire 10s store http_req_rate(2s),http_req_cnt,conn_cnt,sess_cnt
    http-request return status 200 content-type text/plain lf-string "rate=%[sc_http_req_rate(0)] cnt=%[sc_http_req_cnt(0)]"

frontend session
    bind 127.0.0.1:@SESSION@
    tcp-request session track-sc0 src
    stick-table type ip size 100 expire 10s store http_req_rate(2s),http_req_cnt,conn_cnt,sess_cnt
    http-request return status 200 content-type text/plain lf-string "rate=%[sc_http_req_rate(0)] cnt=%[sc_http_req_cnt(0)]"

frontend tarpit
    bind 127.0.0.1:@TARPIT@
    timeout tarpit 700ms
    stick-table type ip size 100 expire 10s store http_req_cnt,http_err_cnt
    http-request track-sc0 src
    http-request tarpit

frontend bytes
    bind 127.0.0.1:@BYTES@
    stick-table type ip size 100 expire 10s store http_req_cnt,bytes_in_cnt,bytes_out_cnt
    http-request track-sc0 src
    http-request return status 200 content-type text/plain string ok if { path_beg /local }
    default_backend app

frontend sticky
    bind 127.0.0.1:@STICKY@
    default_backend pool
backend pool
    balance roundrobin
    stick-table type ip size 100 expire 10s store server_id,server_key,http_req_cnt
    stick on src
    http-request track-sc0 src
    server one 127.0.0.1:@ONE@
    server two 127.0.0.1:@TWO@
frontend one
    bind 127.0.0.1:@ONE@
    http-request return status 200 content-type text/plain string one
frontend two
    bind 127.0.0.1:@TWO@
    http-request return status 200 content-type text/plain string two

frontend conngpc
    bind 127.0.0.1:@CONNGPC@
    stick-table type ip size 100 expire 10s store gpc0,conn_cnt,conn_cur
    tcp-request connection track-sc0 src
    tcp-request connection sc-inc-gpc0(0)
    tcp-request connection reject if { sc_get_gpc0(0) gt 2 }
    http-request return status 200 content-type text/plain lf-string "g=%[sc_get_gpc0(0)] tr=%[sc_trackers(0)] c=%[sc_conn_cur(0)]"

frontend servfail
    bind 127.0.0.1:@SERVFAIL@
    stick-table type ip size 100 expire 10s store http_req_cnt,http_err_cnt,http_fail_cnt
    http-request track-sc0 src
    http-request set-var(txn.path) path
    http-response set-status 500 if { var(txn.path) -m end _to500 }
    http-response set-status 200 if { var(txn.path) -m end _to200 }
    http-response deny if { var(txn.path) -m end _deny }
    use_backend empty if { path_beg /empty }
    default_backend misbehaving
backend misbehaving
    timeout server 300ms
    server m 127.0.0.1:%MISBEHAVING%
backend empty

backend app
    server o 127.0.0.1:@ORIGIN@
frontend origin
    bind 127.0.0.1:@ORIGIN@
    http-request return status 500 content-type text/plain string boom if { path_beg /fail } || { req.hdr(x-fail) -m found }
    http-request return status 200 content-type text/plain lf-string "path=%[path]"
"""


class _Exchange(socketserver.BaseRequestHandler):
    """Keep-alive requests on one connection, each answered as its path says."""

    def handle(self) -> None:
        sock = self.request
        sock.settimeout(3.0)  # every wait is bounded
        data = b""
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    more = sock.recv(4096)
                    if not more or len(data) > 65536:
                        return
                    data += more
                head, _, data = data.partition(b"\r\n\r\n")
                if not self.answer(sock, head.split(b" ", 2)[1]):
                    return
        except OSError:
            return

    @staticmethod
    def answer(sock: socket.socket, path: bytes) -> bool:
        """Answer (or not) a request for ``path``; False to close the connection."""
        if path == b"/close":  # a close without a word
            return False
        if path == b"/reset":  # a reset without a word
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if path == b"/half":  # a head cut in the middle
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-")
            return False
        if path == b"/garbage":
            sock.sendall(b"HTTP/1.1 2x0 OK\r\n\r\n")
            return False
        if path == b"/silent":  # until the proxy gives up
            while sock.recv(4096):
                pass
            return False
        status = {b"/e500": 500, b"/e501": 501, b"/e404": 404}.get(path[:5], 200)
        if path.endswith(b"-cut"):  # a body cut short by a close
            sock.sendall(b"HTTP/1.1 %d Cut\r\nContent-Length: 100\r\n\r\nshort" % status)
            return False
        sock.sendall(b"HTTP/1.1 %d Answer\r\nContent-Length: 2\r\n\r\nok" % status)
        return True


class MisbehavingOrigin(socketserver.ThreadingTCPServer):
    """A server on 127.0.0.1 whose answers are chosen by the request path: ``/close``,
    ``/reset``, ``/half``, ``/garbage``, ``/silent``; any other path is an answer
    with status 500 for ``/e500...``, 501 for ``/e501...``, 404 for ``/e404...``,
    else 200, complete or, for a path ending in ``-cut``, cut short by a close."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Exchange)

    @property
    def port(self) -> int:
        return self.server_address[1]


@pytest.fixture(scope="module")
def misbehaving():
    server = MisbehavingOrigin()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def pair(misbehaving):
    with Pair.start(CONFIG.replace("%MISBEHAVING%", str(misbehaving.port))) as started:
        yield started


def test_tcp_mode_connection_session_and_byte_counters(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(2, src="127.0.0.2", port="TCP", answer=True),  # HTTP through a TCP proxy
            Send(3, src="127.0.0.2", port="TCP"),  # the 4th connection in 2 s is rejected
            Send(1, src="127.0.0.3", port="TCP"),
            ShowTable("tcpfe"),
        ],
    )
    assert [o.value for o in haproxy[2:5]] == [200, CLOSED, CLOSED]


def test_stick_on_src_keeps_each_client_on_its_server(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.2", port="STICKY", answer=True),  # roundrobin: one
            Send(1, src="127.0.0.3", port="STICKY", answer=True),  # two
            Send(1, src="127.0.0.4", port="STICKY", answer=True),  # one
            Send(2, src="127.0.0.2", port="STICKY", answer=True),  # stuck to one
            Send(2, src="127.0.0.3", port="STICKY", answer=True),  # stuck to two
            ShowTable("pool"),  # server_id and server_key per client
        ],
    )
    assert [o.value[-3:] for o in haproxy[:7]] == [b"one", b"two", b"one", b"one", b"one", b"two", b"two"]


def test_tcp_request_connection_sc_inc_gpc0_and_trackers(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Hold("idle", 1, src="127.0.0.5", port="CONNGPC"),  # gpc0=1
            Send(3, src="127.0.0.5", port="CONNGPC", answer=True),  # gpc0=2 (answered), then rejected
            Release("idle"),
            ShowTable("conngpc"),
        ],
    )
    assert haproxy[1].value.endswith(b"g=2 tr=2 c=2") and haproxy[2].value == CLOSED


def test_ipv6_table_keyed_by_x_forwarded_for(pair):
    def from_(address: str, count: int = 1) -> Send:
        return Send(count, src="127.0.0.2", port="XFF", headers=(("X-Forwarded-For", address),))

    assert_same(
        pair,
        [
            from_("10.0.0.1", 3),  # an IPv4 address in an ipv6 table: ::ffff:10.0.0.1
            from_("2001:db8::1", 2),
            from_("2001:DB8:0:0::1"),  # the same address written another way
            from_("not an address"),  # no key: not tracked, never denied
            ShowTable("xff"),
        ],
    )


def test_http_fail_counts_5xx_from_the_server(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.2", port="FAILS", path="/ok"),
            Send(2, src="127.0.0.2", port="FAILS", path="/fail"),  # 500 from the server
            Send(1, src="127.0.0.2", port="FAILS", path="/ok"),  # fail rate 2: denied 503
            Send(1, src="127.0.0.3", port="FAILS", path="/header"),  # backend set-header makes it fail
            ShowTable("fails"),
        ],
    )
    assert [o.value for o in haproxy][:5] == [200, 500, 500, 503, 500]


def test_http_request_set_path_in_a_backend(pair):
    assert_same(
        pair,
        [
            Send(1, src="127.0.0.4", port="FAILS", path="/rewritten", answer=True),
            ShowTable("fails"),
        ],
    )


def test_unreachable_server_503_is_not_an_http_failure(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.2", port="DEADFE", answer=True),
            ShowTable("unreachable"),
        ],
    )
    assert haproxy[0].value.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")


def servfail(src: str) -> Cli:
    return Cli(f"show table servfail key {src}")


def test_server_timeout_504_is_an_http_failure(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.2", port="SERVFAIL", path="/silent", answer=True),
            Send(2, src="127.0.0.3", port="SERVFAIL", path="/silent", keepalive=True),  # the client stays
            servfail("127.0.0.2"),
            servfail("127.0.0.3"),
        ],
    )
    assert haproxy[0].value.startswith(b"HTTP/1.1 504 Gateway Time-out\r\n")
    assert [o.value for o in haproxy[1:3]] == [504, 504]


def test_server_closing_without_an_answer_502_is_an_http_failure(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.4", port="SERVFAIL", path="/close", answer=True),
            Send(1, src="127.0.0.4", port="SERVFAIL", path="/reset"),
            Send(1, src="127.0.0.4", port="SERVFAIL", path="/half"),  # a head cut short
            Send(1, src="127.0.0.4", port="SERVFAIL", path="/garbage"),  # an invalid answer
            servfail("127.0.0.4"),
        ],
    )
    assert haproxy[0].value.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert [o.value for o in haproxy[1:4]] == [502, 502, 502]


def test_later_keepalive_request_to_a_closing_server_is_closed_and_not_a_failure(pair):
    haproxy, _ = assert_same(
        pair,
        [
            # the first request of the connection gets a 502 (a failure), the second
            # no answer at all (the client is to retry): no failure
            Send(2, src="127.0.0.5", port="SERVFAIL", path="/close", keepalive=True),
            servfail("127.0.0.5"),
        ],
    )
    assert [o.value for o in haproxy[:2]] == [502, CLOSED]


def test_server_5xx_counts_when_its_head_comes(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.6", port="SERVFAIL", path="/e500"),
            Send(1, src="127.0.0.6", port="SERVFAIL", path="/e500-cut", answer=True),  # a failure
            Send(1, src="127.0.0.6", port="SERVFAIL", path="/ok-cut", answer=True),  # a 200 cut: none
            Send(1, src="127.0.0.6", port="SERVFAIL", path="/e501"),  # never a failure
            servfail("127.0.0.6"),
            # the server's status counts, not what http-response rules make of it, and
            # an http-response deny counts no error
            Send(1, src="127.0.0.7", port="SERVFAIL", path="/ok_to500"),
            Send(1, src="127.0.0.7", port="SERVFAIL", path="/e500_to200"),
            Send(1, src="127.0.0.7", port="SERVFAIL", path="/ok_deny"),
            Send(1, src="127.0.0.7", port="SERVFAIL", path="/e500_deny"),
            Send(1, src="127.0.0.7", port="SERVFAIL", path="/e404_deny"),
            servfail("127.0.0.7"),
        ],
    )
    assert haproxy[0].value == 500 and haproxy[3].value == 501
    assert haproxy[1].value.endswith(b"\r\n\r\nshort") and haproxy[2].value.endswith(b"\r\n\r\nshort")
    assert [o.value for o in haproxy[5:10]] == [500, 200, 502, 502, 502]  # 502: http-response deny


def test_no_server_503_is_not_an_http_failure(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.8", port="SERVFAIL", path="/empty", answer=True),
            servfail("127.0.0.8"),
        ],
    )
    assert haproxy[0].value.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")


def test_byte_counters_in_http_mode(pair):
    assert_same(
        pair,
        [
            Send(1, src="127.0.0.2", port="BYTES", path="/"),
            Send(1, src="127.0.0.3", port="BYTES", path="/local"),
            ShowTable("bytes"),
        ],
    )


def test_expiry_counts_from_the_track_not_from_the_answer(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.2", port="TARPIT", answer=True),
            ShowTable("tarpit"),
        ],
    )
    assert haproxy[0].value.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")


def test_tcp_request_content_tracking_counts_http_requests(pair):
    assert_same(
        pair,
        [
            Send(2, src="127.0.0.2", port="CONTENT", answer=True),
            ShowTable("content"),
        ],
    )


def test_tcp_request_session_tracking(pair):
    assert_same(
        pair,
        [
            Send(2, src="127.0.0.2", port="SESSION", answer=True),
            ShowTable("session"),
        ],
    )
