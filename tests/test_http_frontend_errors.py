"""Timeouts, server failures, retries/redispatch, queueing, backpressure and tunnels
on the client-side protocol (clock-driven)."""

from __future__ import annotations

from minilb.config.model import Timeouts
from minilb.http.errors import error_response, mux_error
from minilb.http.frontend import MAX_HELD_BODY
from tests.support.http import Harness, proxy, server_model, take

GET = b"GET / HTTP/1.1\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


def timeouts(**kw):
    base = dict(connect=5000, client=30000, server=30000)
    base.update(kw)
    return Timeouts(**base)


def test_http_request_timeout_on_slow_headers_is_408():
    h = Harness(proxy(servers=[server_model()], timeouts=timeouts(http_request=1000)))
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n")
    h.reactor.advance(0.9)
    assert ct.value() == b""
    h.reactor.advance(0.2)
    assert ct.value() == mux_error(408)
    assert ct.disconnecting


def test_idle_new_connection_gets_408_like_haproxy():
    h = Harness(proxy(servers=[server_model()], timeouts=timeouts(http_request=1000)))
    c, ct = h.client()
    h.reactor.advance(1.01)
    assert ct.value().startswith(b"HTTP/1.1 408 Request Time-out\r\n")


def test_without_http_request_timeout_client_timeout_applies_to_headers():
    h = Harness(proxy(servers=[server_model()], timeouts=timeouts(client=2000)))
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\n")
    h.reactor.advance(2.01)
    assert ct.value() == mux_error(408)


def test_keep_alive_timeout_closes_idle_client_silently():
    h = Harness(proxy(servers=[server_model()], timeouts=timeouts(http_keep_alive=500, http_request=5000)))
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    conn.dataReceived(OK)
    take(ct)
    h.reactor.advance(0.49)
    assert not ct.disconnecting
    h.reactor.advance(0.02)
    assert ct.disconnecting
    assert ct.value() == b""


def test_server_timeout_is_504_and_keeps_the_client():
    # haproxy 2.6.12 keeps a keep-alive client after its 504 (and 502): the next
    # request on the connection goes to a server again
    h = Harness(proxy(servers=[server_model()], timeouts=timeouts(server=3000)))
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    h.reactor.advance(2.9)
    assert ct.value() == b""
    h.reactor.advance(0.2)
    assert ct.value() == error_response(504)
    assert not ct.disconnecting
    assert h.server().cur_conns == 0
    c.dataReceived(GET)
    conn2, st2 = h.connector.succeed()
    assert st2.value().startswith(b"GET / HTTP/1.1\r\n")


def test_server_timeout_is_inactivity_while_body_streams():
    h = Harness(proxy(servers=[server_model()], timeouts=timeouts(server=3000)))
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
    for _ in range(4):
        h.reactor.advance(2.0)
        conn.dataReceived(b"x")
    assert not ct.disconnecting
    for _ in range(7):  # silence: the response is cut (too late for a 504)
        h.reactor.advance(1.0)
    assert ct.disconnecting
    assert b"504" not in ct.value()


def test_server_closing_before_answer_is_502():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    conn.connectionLost(None)
    assert ct.value() == error_response(502)


def test_invalid_response_is_502():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    conn.dataReceived(b"HTTP/1.1 2xx Broken\r\n\r\n")
    assert ct.value() == error_response(502)
    assert st.disconnecting


def test_connect_failure_retries_then_503():
    h = Harness(proxy(servers=[server_model()], retries=2))
    c, ct = h.client()
    c.dataReceived(GET)
    h.connector.fail()
    assert h.connector.attempts == []
    h.reactor.advance(1.0)  # turn-around delay min(timeout connect, 1s)
    h.connector.fail()
    h.reactor.advance(1.0)
    assert ct.value() == b""
    h.connector.fail()
    assert ct.value() == error_response(503)
    assert not ct.disconnecting


def test_retry_succeeds_on_second_attempt():
    h = Harness(proxy(servers=[server_model()], retries=3))
    c, ct = h.client()
    c.dataReceived(GET)
    h.connector.fail()
    h.reactor.advance(1.0)
    conn, st = h.connector.succeed()
    assert st.value() == GET
    conn.dataReceived(OK)
    assert ct.value().endswith(b"hi")


def test_redispatch_moves_last_retry_to_another_server():
    px = proxy(servers=[server_model("s1", 8001), server_model("s2", 8002)], retries=1, redispatch=True)
    h = Harness(px)
    c, ct = h.client()
    c.dataReceived(GET)
    first = h.connector.attempts[0][0].name
    h.connector.fail()
    h.reactor.advance(1.0)
    second = h.connector.attempts[0][0].name
    assert second != first


def test_all_servers_down_is_503():
    h = Harness()
    h.server().up = False
    c, ct = h.client()
    c.dataReceived(GET)
    assert ct.value() == error_response(503)
    assert h.connector.attempts == []


def test_maxconn_queue_then_served_when_slot_frees():
    h = Harness(proxy(servers=[server_model(maxconn=1)], timeouts=timeouts(queue=2000)))
    c1, ct1 = h.client()
    c1.dataReceived(GET)
    conn, st = h.connector.succeed()
    c2, ct2 = h.client(port=40001)
    c2.dataReceived(GET)
    assert h.connector.attempts == []  # queued
    conn.dataReceived(OK)
    # the freed slot goes to the queued request (a fresh connection: its first request)
    assert len(h.connector.attempts) == 1


def test_queue_timeout_is_503():
    h = Harness(proxy(servers=[server_model(maxconn=1)], timeouts=timeouts(queue=2000)))
    c1, ct1 = h.client()
    c1.dataReceived(GET)
    h.connector.succeed()
    c2, ct2 = h.client(port=40001)
    c2.dataReceived(GET)
    h.reactor.advance(2.01)
    assert ct2.value() == error_response(503)


def test_reused_connection_closed_by_server_is_retried_on_a_new_one():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    conn.dataReceived(OK)
    take(ct)
    c.dataReceived(GET)  # goes on the pooled connection...
    assert h.connector.attempts == []
    conn.connectionLost(None)  # ...which the server had closed meanwhile
    assert len(h.connector.attempts) == 1
    conn2, st2 = h.connector.succeed()
    conn2.dataReceived(OK)
    assert ct.value().endswith(b"hi")


def test_slow_server_socket_pauses_client_reading():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
    conn, st = h.connector.succeed()
    assert st.producer is c
    c.dataReceived(b"x" * 1000)
    st.producer.pauseProducing()  # what a full socket buffer does
    assert ct.producerState == "paused"
    st.producer.resumeProducing()
    assert ct.producerState == "producing"


def test_slow_client_pauses_server_reading_and_client_timeout_applies():
    h = Harness(proxy(servers=[server_model()], timeouts=timeouts(client=4000)))
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"y" * 1000)
    assert ct.producer is conn
    ct.producer.pauseProducing()
    assert st.producerState == "paused"
    h.reactor.advance(4.01)
    assert ct.disconnecting
    assert st.disconnecting


def test_server_reading_resumes_when_connection_returns_to_pool():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab")
    conn.pauseProducing()
    conn.dataReceived(b"c")
    assert st.producerState == "producing"
    assert h.backend().pools["s1"].idle == [conn]


def test_held_body_is_bounded_while_connecting():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n")
    c.dataReceived(b"z" * (MAX_HELD_BODY + 1))
    assert ct.producerState == "paused"
    conn, st = h.connector.succeed()
    assert ct.producerState == "producing"
    assert st.value().endswith(b"z" * (MAX_HELD_BODY + 1))


def test_websocket_upgrade_becomes_a_tunnel():
    h = Harness(proxy(servers=[server_model()], timeouts=timeouts(tunnel=10000)))
    c, ct = h.client()
    c.dataReceived(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nEARLY")
    conn, st = h.connector.succeed()
    assert take(st) == b"GET /ws HTTP/1.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n"
    conn.dataReceived(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nS1"
    )
    assert take(st) == b"EARLY"  # bytes sent after the upgrade request go once the server agreed
    assert take(ct) == (
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\nS1"
    )
    c.dataReceived(b"C2")
    assert take(st) == b"C2"
    conn.dataReceived(b"S3")
    assert take(ct) == b"S3"
    for _ in range(21):
        h.reactor.advance(1.0)
    assert ct.disconnecting and st.disconnecting


def test_refused_upgrade_closes_after_response():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    conn, st = h.connector.succeed()
    conn.dataReceived(b"HTTP/1.1 400 No\r\nContent-Length: 0\r\n\r\n")
    assert ct.value() == b"HTTP/1.1 400 No\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    assert ct.disconnecting


def test_client_abort_releases_server_connection():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    assert h.server().cur_conns == 1
    c.connectionLost(None)
    assert h.server().cur_conns == 0
    assert st.disconnecting
    assert h.fe.cur_conns == 0


def test_graceful_stop_closes_idle_and_finishes_busy():
    h = Harness()
    idle, idle_t = h.client()
    busy, busy_t = h.client(port=40001)
    busy.dataReceived(GET)
    conn, st = h.connector.succeed()
    h.fe.stop_accepting()
    assert idle_t.disconnecting
    assert not busy_t.disconnecting
    conn.dataReceived(OK)
    assert busy_t.value() == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
    assert busy_t.disconnecting


def test_steady_slow_upload_is_not_a_timeout_but_silence_is():
    h = Harness(proxy(servers=[server_model()], timeouts=timeouts(client=3000, server=3000)))
    c, ct = h.client()
    c.dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n")
    conn, st = h.connector.succeed()
    for _ in range(5):
        h.reactor.advance(2.0)
        c.dataReceived(b"0123456789")
    assert not ct.disconnecting and ct.value() == b""
    for _ in range(7):
        h.reactor.advance(1.0)
    assert ct.disconnecting


class Tracking:
    """Records the stick-counter hooks the frontend calls."""

    def __init__(self):
        self.calls = []

    def on_session_accept(self, sess):
        self.calls.append("accept")

    def on_http_request(self, txn):
        self.calls.append("request")

    def on_http_response(self, txn, status, source):
        self.calls.append(("response", status, source))

    def on_bytes(self, sess, bytes_in, bytes_out):
        self.calls.append(("bytes", bytes_in, bytes_out))

    def on_txn_end(self, txn):
        self.calls.append("txn_end")

    def on_txn_done(self, txn, status, source):
        if source == "deny":
            self.on_http_response(txn, status, source)
        self.on_txn_end(txn)

    def on_session_end(self, sess):
        self.calls.append("end")


def test_stick_hooks_only_when_tracked_and_with_the_right_source():
    from minilb.rules.txn import Reply
    from tests.support.http import FakeRules

    tracking = Tracking()

    def track(sess):
        sess.stkctr[0] = object() if sess.src == "10.0.0.1" else None
        return True

    rules = FakeRules(
        tcp_connection=track,
        http_request=lambda txn: (
            Reply(403, raw=error_response(403), kind="deny") if txn.path == "/deny" else None
        ),
    )
    h = Harness(rules=rules, tracking=tracking)
    h.server().up = False
    c, ct = h.client(src="10.0.0.1")
    c.dataReceived(b"GET /deny HTTP/1.1\r\n\r\n")
    c.dataReceived(b"GET /x HTTP/1.1\r\n\r\n")
    c.connectionLost(None)
    responses = [call for call in tracking.calls if isinstance(call, tuple) and call[0] == "response"]
    # haproxy counts its own 503 (no server available) neither as an error nor a failure
    assert responses == [("response", 403, "deny")]
    assert tracking.calls[0] == "accept" and tracking.calls[-1] == "end"
    tracking.calls.clear()
    c2, ct2 = h.client(src="10.0.0.2")  # nothing tracked: no hook at all
    c2.dataReceived(b"GET /x HTTP/1.1\r\n\r\n")
    c2.connectionLost(None)
    assert tracking.calls == []


def tracked_harness():
    from tests.support.http import FakeRules

    def track(sess):
        sess.stkctr[0] = object()
        return True

    tracking = Tracking()
    h = Harness(rules=FakeRules(tcp_connection=track), tracking=tracking)
    return h, tracking


def responses_of(tracking):
    return [call for call in tracking.calls if isinstance(call, tuple) and call[0] == "response"]


def test_server_status_counts_when_its_head_comes_even_if_the_body_is_cut():
    h, tracking = tracked_harness()
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    conn.dataReceived(b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\nshort")
    assert responses_of(tracking) == [("response", 500, "server")]
    conn.connectionLost(None)  # the body is cut: nothing more counts
    assert ct.disconnecting
    assert responses_of(tracking) == [("response", 500, "server")]


def test_502_counts_on_the_first_request_and_a_later_one_is_closed_uncounted():
    h, tracking = tracked_harness()
    c, ct = h.client()
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    conn.connectionLost(None)  # closed without a word: 502, the client stays
    assert ct.value() == error_response(502) and not ct.disconnecting
    assert responses_of(tracking) == [("response", 502, "server")]
    c.dataReceived(GET)
    conn, st = h.connector.succeed()
    conn.connectionLost(None)  # again, on the second request: closed, no answer
    assert ct.value() == error_response(502) and ct.disconnecting
    assert responses_of(tracking) == [("response", 502, "server")]


def test_broken_chunked_body_after_forwarding_aborts_without_400():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    conn, st = h.connector.succeed()
    c.dataReceived(b"zz-not-hex\r\n")
    assert ct.value() == b""
    assert ct.disconnecting and st.disconnecting
    assert h.server().cur_conns == 0


def test_503_framing_follows_the_client_connection_like_haproxy():
    h = Harness()
    h.server().up = False
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    page = error_response(503)
    assert ct.value() == page.replace(b"\r\n\r\n", b"\r\nconnection: keep-alive\r\n\r\n", 1)
    assert not ct.disconnecting
    c2, ct2 = h.client(port=2)
    c2.dataReceived(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert ct2.value() == error_response(503, close=True)
    assert ct2.disconnecting


def test_bytes_after_an_upgrade_request_wait_for_the_101():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    c.dataReceived(b"\x81\x05hello")  # a websocket frame: not HTTP
    c.dataReceived(b"z" * (MAX_HELD_BODY + 1))
    assert ct.value() == b"" and ct.producerState == "paused"
    conn, st = h.connector.succeed()
    take(st)
    conn.dataReceived(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    assert st.value() == b"\x81\x05hello" + b"z" * (MAX_HELD_BODY + 1)
    assert ct.producerState == "producing"


def test_unreachable_server_503_counts_no_http_failure():
    """haproxy 2.6.12 answers 503 after the connect retries but counts no http_fail
    (tests/test_conformance_traffic.py has the captured case)."""
    from tests.support.http import FakeRules

    tracking = Tracking()

    def track(sess):
        sess.stkctr[0] = object()
        return True

    h = Harness(rules=FakeRules(tcp_connection=track), tracking=tracking)
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    for _ in range(h.backend().retries + 1):
        h.connector.fail()
        h.reactor.advance(1)
    assert ct.value().startswith(b"HTTP/1.1 503")
    assert [call for call in tracking.calls if isinstance(call, tuple) and call[0] == "response"] == []
    assert "txn_end" in tracking.calls


def test_tcp_session_rules_run_and_may_reject():
    from tests.support.http import FakeRules

    tracking = Tracking()
    rules = FakeRules()
    rules.has_tcp_session = True
    seen = []

    def session(sess):
        seen.append(sess.src)
        sess.stkctr[0] = object() if sess.src == "10.0.0.1" else None
        return sess.src != "10.0.0.9"

    rules.tcp_session = session
    h = Harness(rules=rules, tracking=tracking)
    c, ct = h.client(src="10.0.0.1")
    assert seen == ["10.0.0.1"] and tracking.calls == ["accept"]  # tracked at session level
    c2, ct2 = h.client(src="10.0.0.9")
    assert ct2.disconnected or ct2.disconnecting


def test_a_request_counts_on_entries_tracked_by_tcp_content_rules():
    from tests.support.http import FakeRules

    tracking = Tracking()

    def content(sess, txn=None):
        sess.stkctr[0] = object()
        return True

    h = Harness(rules=FakeRules(tcp_content=content), tracking=tracking)
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    assert tracking.calls[:1] == ["request"]


def _tracked_harness():
    from tests.support.http import FakeRules

    tracking = Tracking()

    def track(sess):
        sess.stkctr[0] = object()
        return True

    px = proxy(
        servers=[server_model()], timeouts=Timeouts(connect=1000, client=5000, server=5000, http_request=500)
    )
    return Harness(px, rules=FakeRules(tcp_connection=track), tracking=tracking), tracking


def test_a_first_request_that_never_came_counts_as_a_request():
    """haproxy 2.6.12 (tests/test_conformance_sticktables.py): a 408 on an idle new
    connection is one request of the tracked entry; a client closing before any byte
    is one request and one error."""
    h, tracking = _tracked_harness()
    c, ct = h.client()
    h.reactor.advance(1)
    assert ct.value() == mux_error(408)
    assert tracking.calls[:2] == ["accept", "request"] and not any(
        isinstance(x, tuple) for x in tracking.calls
    )

    h, tracking = _tracked_harness()
    c, ct = h.client()
    c.readConnectionLost()
    c.connectionLost(None)
    assert tracking.calls[:3] == ["accept", "request", ("response", 0, "deny")]

    h, tracking = _tracked_harness()  # after a request: an idle close counts nothing more
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    conn, st = h.connector.succeed()
    conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    c.readConnectionLost()
    c.connectionLost(None)
    assert tracking.calls.count("request") == 1


def test_the_same_rule_reply_is_framed_for_each_request():
    # one Reply object answers every request: its bytes follow each request's framing
    # (keep-alive, HEAD without body, HTTP/1.0 keep-alive header, close)
    from minilb.rules.replies import wire_bytes
    from minilb.rules.txn import Reply
    from tests.support.http import FakeRules

    reply = Reply(
        429,
        headers=((b"content-type", b"text/plain"),),
        body=b"slow down\n",
        reason="Too Many Requests",
        kind="deny",
    )
    h = Harness(rules=FakeRules(http_request=lambda txn: reply))
    c, ct = h.client()
    sent = [
        (b"GET / HTTP/1.1\r\n\r\n", wire_bytes(reply)),
        (b"GET / HTTP/1.1\r\n\r\n", wire_bytes(reply)),
        (b"HEAD / HTTP/1.1\r\n\r\n", wire_bytes(reply, head=True)),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", wire_bytes(reply, version="1.0")),
        (b"GET / HTTP/1.1\r\n\r\n", wire_bytes(reply)),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", wire_bytes(reply, close=True)),
    ]
    for request, expected in sent:
        c.dataReceived(request)
        assert take(ct) == expected
    assert ct.disconnecting
    assert b"slow down" not in wire_bytes(reply, head=True)
    assert b"connection: keep-alive" in wire_bytes(reply, version="1.0")


def test_every_request_field_is_back_to_its_default_between_requests():
    # a request that no backend took resets only the fields it can change: after
    # denies, tarpits, pipelined and served requests every field has its default
    from minilb.http.frontend import _REQUEST_DEFAULTS, _SERVER_FIELDS
    from minilb.rules.txn import Reply
    from tests.support.http import FakeRules

    assert _SERVER_FIELDS < _REQUEST_DEFAULTS.keys()

    def rules(txn):
        if txn.path == b"/deny" or txn.path == "/deny":
            return Reply(429, body=b"no\n", kind="deny")
        if txn.path in (b"/tarpit", "/tarpit"):
            return Reply(500, kind="tarpit", delay_ms=100)
        return None

    h = Harness(rules=FakeRules(http_request=rules))
    c, ct = h.client()

    def assert_defaults():
        for name, default in _REQUEST_DEFAULTS.items():
            assert getattr(c, name) == default, name

    c.dataReceived(b"GET /deny HTTP/1.1\r\n\r\n")
    assert take(ct).startswith(b"HTTP/1.1 429")
    assert_defaults()
    c.dataReceived(b"GET /ok HTTP/1.1\r\n\r\n")  # served: the server fields change
    conn, st = h.connector.succeed()
    conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    assert take(ct).endswith(b"hi")
    assert_defaults()
    c.dataReceived(b"GET /tarpit HTTP/1.1\r\n\r\nGET /deny HTTP/1.1\r\n\r\n")  # pipelined
    h.reactor.advance(0.2)
    assert take(ct).count(b"HTTP/1.1 ") == 2
    assert_defaults()
    c.dataReceived(b"HEAD /deny HTTP/1.1\r\n\r\n")
    c.dataReceived(b"POST /deny HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert take(ct).count(b"HTTP/1.1 429") == 2
    assert_defaults()
    assert not ct.disconnecting
