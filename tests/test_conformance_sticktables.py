"""Stick-table rules conformance: one config under real HAProxy 2.6 and under minilb,
the same requests at the same instants (see `tests.support.conformance`), equal
status sequences and equal ``show table`` entries.

Each scenario is one frontend of the module's configuration (its own port and
table), written next to its test; one pair of processes serves them all.

Clients come from distinct loopback addresses (127.0.0.2, 127.0.0.3, ...), so that
``src`` tells them apart; the harness itself only ever talks to the stats socket
from 127.0.0.1.  Rate periods are short (1 s or 2 s) and the table reads are
placed where the sliding-window value cannot depend on a millisecond of
difference between the two processes (inside the first period, or when the
previous period holds at most one event).
"""

from __future__ import annotations

import pytest

from tests.conftest import requires_haproxy
from tests.support.conformance import (
    CLOSED,
    OPEN,
    Cli,
    Hold,
    Observe,
    Pair,
    Release,
    Send,
    ShowTable,
    Wait,
    assert_same,
)

pytestmark = [pytest.mark.integration, pytest.mark.interop, requires_haproxy]

HEADER = """\
global
    stats socket ipv4@127.0.0.1:@STATS@ level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""

OK = "    http-request return status 200 content-type text/plain string ok\n"


@pytest.fixture(scope="module")
def pair():
    """One pair of processes for the module: each scenario has its own frontend,
    table and port, so that scenarios never share an entry."""
    with Pair.start(CONFIG) as started:
        yield started


def statuses(observations, src: str) -> list:
    return [o.value for o in observations if o.what.startswith(f"{src} ")]


def table(observations, step: int) -> str:
    return next(str(o.value) for o in observations if o.step == step)


PER_IP_RATE = (
    """\
frontend rate
    bind 127.0.0.1:@RATE@
    stick-table type ip size 100 expire 10s store http_req_rate(1s),http_req_cnt,conn_cnt,conn_cur,gpc0,http_err_cnt
    http-request track-sc0 src
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 3 }
"""
    + OK
)


def test_per_ip_rate_limit_answers_429_then_falls_back_after_its_period(pair):
    steps = [
        Send(8, port="RATE", src="127.0.0.2"),  # 200 x3, then 429: the 4th request makes the rate 4
        Send(2, port="RATE", src="127.0.0.3"),  # another address has its own entry
        ShowTable("rate"),  # inside the first period: rates are exact counts
        Wait(1250),  # next period: 8 x 0.75 of the previous one + the new request > 3
        Send(1, port="RATE", src="127.0.0.2"),
        Wait(1000),  # the previous period now holds one request: back under the limit
        Send(2, port="RATE", src="127.0.0.2"),
        ShowTable("rate"),
    ]
    haproxy, _ = assert_same(pair, steps)
    # the reference itself behaves as the scenario says (a wrong scenario would compare nothing useful)
    assert statuses(haproxy, "127.0.0.2") == [200, 200, 200, 429, 429, 429, 429, 429, 429, 200, 200]
    assert statuses(haproxy, "127.0.0.3") == [200, 200]
    assert "key=127.0.0.2 use=0" in table(haproxy, 2) and "http_req_rate(1000)=8" in table(haproxy, 2)


ABUSE_FLAG = (
    """\
frontend abuse
    bind 127.0.0.1:@ABUSE@
    stick-table type ip size 100 expire 10s store gpc0,http_req_rate(1s),http_req_cnt
    http-request track-sc0 src
    http-request deny deny_status 403 if { sc_get_gpc0(0) gt 0 }
    http-request sc-inc-gpc0(0) if { sc_http_req_rate(0) gt 3 }
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 3 }
"""
    + OK
)


def test_abuse_flag_with_sc_inc_gpc0_denies_until_the_entry_goes(pair):
    steps = [
        Send(6, port="ABUSE", src="127.0.0.2"),  # 200 x3, 429 (flagged now), then 403
        Send(2, port="ABUSE", src="127.0.0.3"),
        ShowTable("abuse"),
        Wait(2100),  # the rate is back to 0, the flag stays
        Send(2, port="ABUSE", src="127.0.0.2"),
        Send(1, port="ABUSE", src="127.0.0.3"),
        ShowTable("abuse"),
    ]
    haproxy, _ = assert_same(pair, steps)
    assert statuses(haproxy, "127.0.0.2") == [200, 200, 200, 429, 403, 403, 403, 403]
    assert "gpc0=1" in table(haproxy, 2)


PER_PATH = (
    """\
frontend bypath
    bind 127.0.0.1:@BYPATH@
    http-request track-sc1 path table paths
    http-request deny deny_status 429 if { sc_http_req_rate(1) gt 2 }
"""
    + OK
    + """\
backend paths
    stick-table type string len 16 size 100 expire 10s store http_req_rate(2s),http_req_cnt
"""
)


def test_per_path_limit_with_a_string_table(pair):
    long_path = "/" + "x" * 30  # longer than the key length: stored truncated
    steps = [
        Send(4, port="BYPATH", src="127.0.0.2", path="/a"),  # 200 200 429 429
        Send(1, port="BYPATH", src="127.0.0.3", path="/a"),  # the path is the key, not the client
        Send(2, port="BYPATH", src="127.0.0.3", path="/b?x=1"),  # the query is not part of path
        Send(3, port="BYPATH", src="127.0.0.2", path=long_path),
        Send(1, port="BYPATH", src="127.0.0.2", path=long_path + "yy"),  # same 16-byte key
        ShowTable("paths"),
    ]
    haproxy, _ = assert_same(pair, steps)
    assert [o.value for o in haproxy if "GET /a " in o.what] == [200, 200, 429, 429, 429]


CONN_LIMIT = (
    """\
frontend conn
    bind 127.0.0.1:@CONN@
    stick-table type ip size 100 expire 10s store conn_cur,conn_cnt,conn_rate(2s)
    tcp-request connection track-sc0 src
    tcp-request connection reject if { sc_conn_cur(0) gt 2 }
"""
    + OK
)


def test_concurrent_connection_limit_with_tcp_request_connection_reject(pair):
    steps = [
        Hold("first", 2, port="CONN", src="127.0.0.2"),  # two idle connections, both kept
        Send(1, port="CONN", src="127.0.0.2"),  # a third: closed without an answer
        Send(1, port="CONN", src="127.0.0.3"),
        ShowTable("conn"),  # use=2 conn_cur=2 for 127.0.0.2
        Hold("more", 1, port="CONN", src="127.0.0.2"),  # also rejected
        Release("first"),
        Release("more"),
        Send(2, port="CONN", src="127.0.0.2"),  # room again
        ShowTable("conn"),
    ]
    haproxy, _ = assert_same(pair, steps)
    assert haproxy[0].value == (OPEN, OPEN)
    assert statuses(haproxy, "127.0.0.2") == [CLOSED, 200, 200]


HTTP_ERRORS = (
    """\
frontend errors
    bind 127.0.0.1:@ERRORS@
    stick-table type ip size 100 expire 10s store http_req_cnt,http_err_cnt,http_err_rate(2s)
    http-request track-sc0 src
    http-request deny deny_status 429 if { sc_http_err_rate(0) gt 3 }
    http-request deny deny_status 403 if { path_beg /forbidden }
    use_backend generated if { path_beg /generated }
    default_backend app
backend generated
    http-request return status 404 content-type text/plain string missing
backend app
    server origin 127.0.0.1:@ORIGIN@
frontend origin
    bind 127.0.0.1:@ORIGIN@
    http-request return status 404 content-type text/plain string gone if { path_beg /gone }
"""
    + OK
)


def test_http_err_counts_4xx_from_a_server_and_denials(pair):
    steps = [
        Send(1, port="ERRORS", src="127.0.0.2", path="/"),
        Send(2, port="ERRORS", src="127.0.0.2", path="/gone"),  # 404 from the server behind
        Send(1, port="ERRORS", src="127.0.0.3", path="/forbidden"),  # a deny is an error too
        ShowTable("errors"),
        Send(4, port="ERRORS", src="127.0.0.4", path="/gone"),  # 404 x3, then the error rate says 429
        Send(1, port="ERRORS", src="127.0.0.4", path="/"),
        ShowTable("errors"),
    ]
    haproxy, _ = assert_same(pair, steps)
    assert statuses(haproxy, "127.0.0.2") == [200, 404, 404]


def test_http_err_and_a_404_generated_by_http_request_return(pair):
    steps = [
        Send(2, port="ERRORS", src="127.0.0.5", path="/generated"),
        Cli("show table errors key 127.0.0.5"),  # the table is shared with the test above
    ]
    haproxy, _ = assert_same(pair, steps)
    assert statuses(haproxy, "127.0.0.5") == [404, 404]


IDLE_CONNECTIONS = (
    """\
frontend idle
    bind 127.0.0.1:@IDLE@
    timeout http-request 500ms
    stick-table type ip size 100 expire 10s store conn_cnt,conn_cur,http_req_cnt,http_err_cnt
    tcp-request connection track-sc0 src
"""
    + OK
)


def test_idle_connection_closed_by_the_client_counts_as_a_request(pair):
    steps = [
        Hold("idle", 2, port="IDLE", src="127.0.0.2"),
        Release("idle"),  # closed by the client before any request byte
        Cli("show table idle key 127.0.0.2"),  # the table is shared with the next test
    ]
    assert_same(pair, steps)


def test_idle_connection_timed_out_by_http_request_timeout(pair):
    steps = [
        Hold("slow", 1, port="IDLE", src="127.0.0.3"),
        Wait(800),  # past 'timeout http-request 500ms': haproxy answers 408 and closes
        Observe("slow"),
        Cli("show table idle key 127.0.0.3"),
    ]
    assert_same(pair, steps)


CONFIG = HEADER + PER_IP_RATE + ABUSE_FLAG + PER_PATH + CONN_LIMIT + HTTP_ERRORS + IDLE_CONNECTIONS
