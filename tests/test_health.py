"""Health checks: rise/fall transitions, intervals, HTTP expectations, and the checker on a Clock."""

from __future__ import annotations

import random

import pytest
from twisted.internet import defer, error, task
from twisted.internet.testing import StringTransport

from minilb.config.model import Address, HttpCheck, Proxy, Server, Timeouts, TLSOptions
from minilb.errors import BUILTIN
from minilb.http.balance import ServerState
from minilb.http.health import (
    DOWN,
    UP,
    Expectation,
    HealthState,
    HttpCheckReader,
    build_check_request,
)
from minilb.http.healthcheck import HealthChecker

# --------------------------------------------------------------------------- the state machine


def test_server_with_check_starts_up_and_first_failure_takes_it_down():
    # HAProxy 2.6: health starts at `rise`, so one failed check before any success is DOWN
    st = HealthState(rise=2, fall=3)
    assert st.up
    assert st.record(False) == DOWN
    assert not st.up


def test_fully_up_server_needs_fall_failures():
    st = HealthState(rise=2, fall=3)
    assert st.record(True) is None  # now fully up
    assert st.record(False) is None
    assert st.record(False) is None
    assert st.record(False) == DOWN


def test_down_server_needs_rise_successes_and_a_failure_restarts_the_count():
    st = HealthState(rise=3, fall=2, initially_up=False)
    assert not st.up
    assert st.record(True) is None
    assert st.record(True) is None
    assert st.record(False) is None  # back to zero
    assert st.record(True) is None
    assert st.record(True) is None
    assert st.record(True) == UP
    assert st.health == st.top


def test_intervals_follow_state():
    st = HealthState(rise=2, fall=2, initially_up=False)
    assert st.interval_ms(2000, 500, 10000) == 10000  # DOWN: downinter
    st.record(True)
    assert st.interval_ms(2000, 500, 10000) == 500  # rising: fastinter
    st.record(True)
    assert st.interval_ms(2000, 500, 10000) == 2000  # fully up: inter
    st.record(False)
    assert st.interval_ms(2000, 500, 10000) == 500  # going down: fastinter
    assert st.interval_ms(2000, None, None) == 2000


# --------------------------------------------------------------------------- HTTP expectations


def feed_response(expect_words, *chunks, eof=False):
    reader = HttpCheckReader(Expectation(expect_words))
    for chunk in chunks:
        result = reader.feed(chunk)
        if result is not None:
            return result
    return reader.eof() if eof else None


def test_default_expectation_accepts_2xx_3xx():
    assert feed_response((), b"HTTP/1.1 302 Found\r\n").success
    bad = feed_response((), b"HTTP/1.0 404 File not found\r\n\r\n")
    assert not bad.success
    assert bad.describe() == 'reason: Layer7 wrong status, code: 404, info: "File not found"'
    ok = feed_response((), b"HTTP/1.0 200 OK\r\n")
    assert ok.describe() == "reason: Layer7 check passed, code: 200"


def test_status_list_ranges_rstatus_and_negation():
    assert feed_response(("status", "204"), b"HTTP/1.1 204 No Content\r\n").success
    assert not feed_response(("status", "200"), b"HTTP/1.1 204 No Content\r\n").success
    assert feed_response(("status", "200,300-399"), b"HTTP/1.1 301 Moved\r\n").success
    assert feed_response(("rstatus", "^3"), b"HTTP/1.1 304 NM\r\n").success
    assert feed_response(("!", "status", "500"), b"HTTP/1.1 404 x\r\n").success


def test_string_expectation_reads_the_body_across_chunks():
    ok = feed_response(("string", "ready"), b"HTTP/1.1 200 OK\r\nX: y\r\n", b"\r\nall rea", b"dy now")
    assert ok.success
    bad = feed_response(("string", "ready"), b"HTTP/1.1 200 OK\r\n\r\nnot yet", eof=True)
    assert bad.describe() == 'reason: Layer7 invalid response, info: "HTTP content check did not match"'
    assert feed_response(("rstring", "v[0-9]+"), b"HTTP/1.1 200 OK\r\n\r\nv12").success


def test_short_status_names_for_show_stat():
    assert feed_response((), b"HTTP/1.1 200 OK\r\n").status == "L7OK"
    assert feed_response(("status", "200"), b"HTTP/1.1 500 x\r\n").status == "L7STS"
    assert feed_response((), b"junk\r\n").status == "L7RSP"


def test_garbage_and_silence_are_invalid_responses():
    assert feed_response((), b"SSH-2.0-OpenSSH\r\n").reason == "Layer7 invalid response"
    assert feed_response((), eof=True).info == "socket closed before any data"
    assert feed_response((), b"HTTP/1.1 20", eof=True).info == "invalid HTTP status line"


def test_check_request_shape_as_haproxy_sends_it():
    # each expected value is what haproxy 2.6.12 sent for the same option httpchk / http-check send
    assert build_check_request("OPTIONS", "/", "HTTP/1.0", None) == b"OPTIONS / HTTP/1.0\r\n\r\n"
    assert build_check_request("GET", "/health", "HTTP/1.0", None) == b"GET /health HTTP/1.0\r\n\r\n"
    assert build_check_request("GET", "/h", "HTTP/1.1\r\nHost: x.test", None) == (
        b"GET /h HTTP/1.1\r\nhost: x.test\r\nconnection: close\r\n\r\n"
    )
    assert build_check_request("GET", "/h", "HTTP/1.1", "api.test", (("Host", "api.test"), ("X-A", "b"))) == (
        b"GET /h HTTP/1.1\r\nhost: api.test\r\nx-a: b\r\nconnection: close\r\n\r\n"
    )


# --------------------------------------------------------------------------- the checker on a Clock


class FakeConnector:
    """Records dial attempts; each returns a Deferred the test fires by hand."""

    def __init__(self):
        self.calls = []

    def __call__(self, address, factory, timeout_s, tls, sni, port):
        d = defer.Deferred()
        self.calls.append(
            {"address": address, "factory": factory, "timeout": timeout_s, "port": port, "d": d}
        )
        return d

    def accept(self):
        """Complete the last dial: build the protocol on a StringTransport."""
        call = self.calls[-1]
        proto = call["factory"].buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        call["d"].callback(proto)
        return proto, transport

    def refuse(self):
        self.calls[-1]["d"].errback(error.ConnectionRefusedError())


def make_checker(clock, log, httpchk=None, timeouts=None, **server_kw):
    model = Server(BUILTIN, "s1", Address("ipv4", "127.0.0.1", 8080), check=True, id=1, **server_kw)
    server = ServerState.from_model(model)
    other = ServerState.from_model(Server(BUILTIN, "s2", Address("ipv4", "127.0.0.1", 8081), id=2))
    proxy = Proxy(BUILTIN, "be", "backend", mode="http", httpchk=httpchk, timeouts=timeouts or Timeouts())
    connector = FakeConnector()
    rng = random.Random(0)
    checker = HealthChecker(clock, server, proxy, log, farm=[server, other], rng=rng, connect=connector)
    return checker, server, other, connector


@pytest.fixture
def logged():
    lines = []
    return lines


def test_tcp_check_down_then_up_with_haproxy_log_lines(logged):
    clock = task.Clock()
    checker, server, other, conn = make_checker(
        clock, lambda lvl, msg: logged.append((lvl, msg)), rise=2, fall=2
    )
    checker.start()
    clock.advance(2.0)  # the first check happens within `inter`
    assert len(conn.calls) == 1
    assert conn.calls[0]["timeout"] == 2.0 and conn.calls[0]["port"] is None
    conn.refuse()
    assert server.up is False
    assert (checker.last_result.status, checker.last_duration_ms) == ("L4CON", 0)
    assert logged == [
        (
            "warning",
            'Server be/s1 is DOWN, reason: Layer4 connection problem, info: "Connection refused", '
            "check duration: 0ms. 1 active and 0 backup servers left. "
            "0 sessions active, 0 requeued, 0 remaining in queue.",
        )
    ]
    clock.advance(2.0)
    proto, transport = conn.accept()
    assert transport.disconnecting  # a TCP check closes right away
    assert server.up is False
    clock.advance(2.0)
    conn.accept()
    assert server.up is True
    assert logged[-1] == (
        "warning",
        "Server be/s1 is UP, reason: Layer4 check passed, check duration: 0ms. "
        "2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
    )


def test_last_server_down_logs_no_server_available(logged):
    clock = task.Clock()
    checker, server, other, conn = make_checker(clock, lambda lvl, msg: logged.append((lvl, msg)))
    other.up = False
    checker.start()
    clock.advance(2.0)
    conn.refuse()
    assert logged[-1] == ("alert", "backend be has no server available!")


def test_intervals_fastinter_downinter_and_port_override():
    clock = task.Clock()
    checker, server, _, conn = make_checker(
        clock, None, inter=1000, fastinter=100, downinter=5000, rise=2, fall=2, check_port=9999
    )
    checker.start()
    clock.advance(1.0)
    assert conn.calls[-1]["port"] == 9999
    conn.accept()  # fully up now: next check after inter
    clock.advance(0.999)
    assert len(conn.calls) == 1
    clock.advance(0.001)
    assert len(conn.calls) == 2
    conn.refuse()  # going down: fastinter
    clock.advance(0.1)
    assert len(conn.calls) == 3
    conn.refuse()  # DOWN: downinter
    assert not server.up
    clock.advance(4.9)
    assert len(conn.calls) == 3
    clock.advance(0.1)
    assert len(conn.calls) == 4


def test_http_check_sends_request_and_judges_status(logged):
    clock = task.Clock()
    chk = HttpCheck(method="GET", uri="/health", version="HTTP/1.1", host="be.test", expect=("status", "200"))
    checker, server, _, conn = make_checker(clock, lambda lvl, msg: logged.append((lvl, msg)), httpchk=chk)
    checker.start()
    clock.advance(2.0)
    proto, transport = conn.accept()
    assert transport.value() == b"GET /health HTTP/1.1\r\nhost: be.test\r\nconnection: close\r\n\r\n"
    proto.dataReceived(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
    assert not server.up
    assert 'reason: Layer7 wrong status, code: 503, info: "Service Unavailable"' in logged[0][1]


def test_timeout_check_is_read_time_after_connect(logged):
    clock = task.Clock()
    checker, server, _, conn = make_checker(
        clock,
        lambda lvl, msg: logged.append((lvl, msg)),
        httpchk=HttpCheck(),
        timeouts=Timeouts(connect=5000, check=300),
    )
    checker.start()
    clock.advance(2.0)
    assert conn.calls[0]["timeout"] == 2.0  # min(timeout connect, inter)
    clock.advance(0.5)  # connecting took 500 ms
    proto, transport = conn.accept()
    clock.advance(0.299)
    assert server.up
    clock.advance(0.001)
    assert not server.up
    assert "reason: Layer7 timeout, check duration: 800ms." in logged[0][1]


def test_without_timeout_check_inter_bounds_the_whole_check(logged):
    clock = task.Clock()
    checker, server, _, conn = make_checker(
        clock, lambda lvl, msg: logged.append((lvl, msg)), httpchk=HttpCheck(), timeouts=Timeouts(connect=100)
    )
    checker.start()
    clock.advance(2.0)
    assert conn.calls[0]["timeout"] == 2.0
    clock.advance(1.5)
    conn.accept()
    clock.advance(0.499)
    assert server.up
    clock.advance(0.001)
    assert not server.up
    assert "check duration: 2000ms." in logged[0][1]


def test_connect_timeout_is_layer4_timeout(logged):
    clock = task.Clock()
    checker, server, _, conn = make_checker(clock, lambda lvl, msg: logged.append((lvl, msg)))
    checker.start()
    clock.advance(2.0)
    clock.advance(1.5)
    conn.calls[-1]["d"].errback(error.TimeoutError())
    assert "reason: Layer4 timeout, check duration: 1500ms." in logged[0][1]


def test_stop_cancels_timers_and_disabled_servers_are_not_checked():
    clock = task.Clock()
    checker, server, _, conn = make_checker(clock, None)
    checker.start()
    checker.stop()
    assert clock.getDelayedCalls() == []
    checker2, _, _, conn2 = make_checker(clock, None, disabled=True)
    checker2.start()
    clock.advance(10)
    assert conn2.calls == []


def test_health_module_reexports_the_adapter():
    import minilb.http.health as health

    assert health.HealthChecker is HealthChecker


def test_addr_and_port_overrides_choose_where_checks_go():
    clock = task.Clock()
    checker, server, _, conn = make_checker(clock, None, check_addr="127.0.0.9", check_port=8404)
    checker.start()
    clock.advance(2.0)
    call = conn.calls[0]
    assert (call["address"].host, call["port"]) == ("127.0.0.9", 8404)
    v6, _, _, conn6 = make_checker(clock, None, check_addr="::1")
    v6.start()
    clock.advance(2.0)
    assert conn6.calls[0]["address"].family == "ipv6"


def test_a_dialer_that_raises_is_a_layer4_problem(logged):
    clock = task.Clock()
    model = Server(BUILTIN, "s1", Address("unix", path="/nonexistent/sock"), check=True, id=1)
    server = ServerState.from_model(model)
    proxy = Proxy(BUILTIN, "be", "backend")

    def broken(*args):
        raise OSError("cannot connect to address family 'unix'")

    checker = HealthChecker(
        clock, server, proxy, lambda lvl, msg: logged.append(msg), rng=random.Random(0), connect=broken
    )
    checker.start()
    clock.advance(2.0)
    assert not server.up
    assert "Layer4 connection problem, info: \"cannot connect to address family 'unix'\"" in logged[0]
    clock.advance(2.0)  # and it keeps checking
    assert checker.checks_done == 2


@pytest.mark.parametrize(
    "server_kw, expect_tls",
    [
        ({"tls": TLSOptions(enabled=True)}, True),  # inherited from `ssl`
        ({"tls": TLSOptions(enabled=True), "check_port": 8404}, False),  # elsewhere: plain
        ({"tls": TLSOptions(enabled=True), "check_addr": "10.0.0.1"}, False),
        ({"tls": TLSOptions(enabled=True), "check_port": 8404, "check_ssl": True}, True),
        ({"check_ssl": True}, True),  # check-ssl on a plain server
        ({}, False),
    ],
)
def test_checks_use_tls_like_haproxy(server_kw, expect_tls):
    clock = task.Clock()
    tls_seen = []

    def dial(address, factory, timeout_s, tls, sni, port):
        tls_seen.append(tls is not None and tls.enabled)
        return defer.Deferred()

    model = Server(BUILTIN, "s1", Address("ipv4", "127.0.0.1", 443), check=True, id=1, **server_kw)
    checker = HealthChecker(
        clock,
        ServerState.from_model(model),
        Proxy(BUILTIN, "be", "backend"),
        None,
        rng=random.Random(0),
        connect=dial,
    )
    checker.start()
    clock.advance(2.0)
    assert tls_seen == [expect_tls]


def test_stop_during_a_check_records_nothing(logged):
    clock = task.Clock()
    checker, server, _, conn = make_checker(clock, lambda lvl, msg: logged.append(msg), httpchk=HttpCheck())
    checker.start()
    clock.advance(2.0)
    proto, transport = conn.accept()  # an HTTP check waiting for its answer
    checker.stop()
    proto.connectionLost(None)  # the aborted connection reports its end
    assert server.up and logged == [] and checker.checks_done == 0
    assert clock.getDelayedCalls() == []
    checker2, server2, _, conn2 = make_checker(clock, lambda lvl, msg: logged.append(msg))
    checker2.start()
    clock.advance(2.0)
    d = conn2.calls[0]["d"]
    checker2.stop()  # a connect in progress is cancelled
    assert d.called and logged == [] and server2.up
    d.addErrback(lambda f: None)
