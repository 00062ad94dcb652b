"""Client-side HTTP protocol: transcripts through a listen proxy with fake servers."""

from __future__ import annotations

from minilb.config.model import ErrorFile, ForwardFor
from minilb.errors import BUILTIN
from minilb.http.errors import error_response, mux_error
from minilb.rules.txn import Reply
from tests.support.http import FakeRules, Harness, proxy, server_model, take

GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


def one_exchange(h, request=GET, response=OK):
    c, ct = h.client()
    c.dataReceived(request)
    conn, st = h.connector.succeed()
    conn.dataReceived(response)
    return c, ct, conn, st


def test_get_is_forwarded_and_answer_relayed():
    h = Harness()
    c, ct, conn, st = one_exchange(h, b"GET /a?q HTTP/1.1\r\nHost: x\r\nUser-Agent: T\r\n\r\n")
    assert st.value() == b"GET /a?q HTTP/1.1\r\nhost: x\r\nuser-agent: T\r\n\r\n"
    assert ct.value() == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
    assert not ct.disconnecting
    assert h.server().cur_conns == 0
    assert h.backend().pools["s1"].idle == [conn]


def test_http10_client_keep_alive_gets_connection_header_and_server_sees_it():
    h = Harness()
    c, ct, conn, st = one_exchange(h, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert st.value() == b"GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n"
    assert ct.value() == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nhi"
    assert not ct.disconnecting


def test_http10_client_without_keep_alive_is_closed_after_response():
    h = Harness()
    c, ct, conn, st = one_exchange(h, b"GET / HTTP/1.0\r\n\r\n")
    assert ct.value().endswith(b"\r\n\r\nhi")
    assert b"connection" not in ct.value()
    assert ct.disconnecting


def test_connection_close_request_gets_close_header_and_server_connection_is_pooled():
    h = Harness()
    c, ct, conn, st = one_exchange(h, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert st.value() == b"GET / HTTP/1.1\r\n\r\n"
    assert ct.value() == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
    assert ct.disconnecting
    assert h.backend().pools["s1"].idle == [conn]


def test_keep_alive_second_request_reuses_the_server_connection():
    h = Harness()
    c, ct, conn, st = one_exchange(h)
    take(ct), take(st)
    c.dataReceived(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert h.connector.attempts == []
    assert st.value() == b"GET /b HTTP/1.1\r\nhost: x\r\n\r\n"
    conn.dataReceived(OK)
    assert ct.value().endswith(b"hi")


def test_reuse_safe_first_request_of_new_client_dials_new_connection_then_reuses():
    h = Harness()
    one_exchange(h)
    c2, ct2 = h.client(port=40001)
    c2.dataReceived(GET)
    assert len(h.connector.attempts) == 1  # first request: never on an idle connection
    conn2, st2 = h.connector.succeed()
    conn2.dataReceived(OK)
    assert len(h.backend().pools["s1"].idle) == 2
    c2.dataReceived(GET)
    assert h.connector.attempts == []  # later requests take an idle one


def test_reuse_always_lets_first_request_use_idle_connection():
    h = Harness(proxy(servers=[server_model()], http_reuse="always"))
    one_exchange(h)
    c2, ct2 = h.client(port=40001)
    c2.dataReceived(GET)
    assert h.connector.attempts == []


def test_server_close_mode_closes_server_connection_and_keeps_client():
    h = Harness(proxy(servers=[server_model()], http_connection_mode="server-close"))
    c, ct, conn, st = one_exchange(h)
    assert st.value() == b"GET /a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    assert st.disconnecting
    assert not ct.disconnecting
    assert h.backend().pools["s1"].idle == []


def test_httpclose_mode_closes_both_sides():
    h = Harness(proxy(servers=[server_model()], http_connection_mode="close"))
    c, ct, conn, st = one_exchange(h)
    assert ct.value() == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
    assert ct.disconnecting and st.disconnecting


def test_pipelined_requests_are_answered_in_order():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
    conn, st = h.connector.succeed()
    assert take(st) == b"GET /1 HTTP/1.1\r\n\r\n"
    conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
    assert take(st) == b"GET /2 HTTP/1.1\r\n\r\n"
    conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")
    assert ct.value() == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n1HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n2"
    )


def test_pipelined_request_with_body_waits_its_turn():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 4\r\n\r\nab")
    conn, st = h.connector.succeed()
    c.dataReceived(b"cd")
    assert take(st) == b"GET /1 HTTP/1.1\r\n\r\n"
    conn.dataReceived(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert take(st) == b"POST /2 HTTP/1.1\r\ncontent-length: 4\r\n\r\nabcd"


def test_chunked_request_body_streams_as_chunks():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    conn, st = h.connector.succeed()
    assert take(st) == b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
    c.dataReceived(b"5\r\nhello\r\n")
    assert take(st) == b"5\r\nhello\r\n"
    c.dataReceived(b"0\r\n\r\n")
    assert take(st) == b"0\r\n\r\n"


def test_body_sent_before_connect_is_held_then_forwarded():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel")
    c.dataReceived(b"lo")
    conn, st = h.connector.succeed()
    assert st.value() == b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello"


def test_chunked_response_is_relayed_chunked():
    h = Harness()
    c, ct, conn, st = one_exchange(
        h, response=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert ct.value() == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert h.backend().pools["s1"].idle == [conn]


def test_close_delimited_response_is_relayed_as_is_and_closes_client():
    # haproxy 2.6 keeps the server's version on the status line and closes the client
    h = Harness()
    c, ct, conn, st = one_exchange(h, response=b"HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nbody")
    conn.dataReceived(b"-more")
    assert not ct.disconnecting
    st.loseConnection()
    conn.connectionLost(None)
    assert ct.value() == b"HTTP/1.0 200 OK\r\nx-a: 1\r\n\r\nbody-more"
    assert ct.disconnecting


def test_chunked_response_trailers_are_relayed():
    h = Harness()
    c, ct, conn, st = one_exchange(
        h,
        response=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
    )
    assert ct.value() == (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n"
    )


def test_head_request_response_has_no_body_and_server_connection_not_reused():
    h = Harness()
    c, ct, conn, st = one_exchange(
        h, b"HEAD / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    )
    assert ct.value() == b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"
    assert not ct.disconnecting
    assert st.disconnecting


def test_expect_100_continue_interim_is_relayed():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    conn, st = h.connector.succeed()
    assert b"expect: 100-continue" in st.value()
    conn.dataReceived(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert take(ct) == b"HTTP/1.1 100 Continue\r\n\r\n"
    c.dataReceived(b"ok")
    conn.dataReceived(OK)
    assert take(ct) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"


def test_bad_request_gets_haproxy_400_and_close():
    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert ct.value() == mux_error(400)
    assert ct.value().startswith(b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\n")
    assert ct.disconnecting
    assert h.connector.attempts == []


def test_errorfile_replaces_400():
    page = b"HTTP/1.1 400 Nope\r\ncontent-length: 0\r\n\r\n"
    h = Harness(proxy(servers=[server_model()], errorfiles=(ErrorFile(BUILTIN, 400, "f", page),)))
    c, ct = h.client()
    c.dataReceived(b"\x01\x02\r\n\r\n")
    assert ct.value() == page


def test_forwardfor_added_and_if_none_respected():
    h = Harness(proxy(servers=[server_model()], forwardfor=ForwardFor()))
    c, ct, conn, st = one_exchange(h)
    assert st.value() == b"GET /a HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 10.0.0.1\r\n\r\n"
    h = Harness(proxy(servers=[server_model()], forwardfor=ForwardFor(if_none=True, header="X-Client")))
    c, ct, conn, st = one_exchange(h, b"GET / HTTP/1.1\r\nX-Client: 9.9.9.9\r\n\r\n")
    assert st.value() == b"GET / HTTP/1.1\r\nx-client: 9.9.9.9\r\n\r\n"


def test_forwardfor_except_network():
    h = Harness(proxy(servers=[server_model()], forwardfor=ForwardFor(except_net="10.0.0.0/8")))
    c, ct, conn, st = one_exchange(h)
    assert b"x-forwarded-for" not in st.value()


def test_rules_deny_reply_keeps_connection_alive():
    rules = FakeRules(
        http_request=lambda txn: Reply(403, raw=error_response(403)) if txn.path == "/no" else None
    )
    h = Harness(rules=rules)
    c, ct = h.client()
    c.dataReceived(b"GET /no HTTP/1.1\r\n\r\n")
    assert take(ct) == error_response(403)
    assert not ct.disconnecting
    assert h.connector.attempts == []
    c.dataReceived(b"GET /yes HTTP/1.1\r\n\r\n")
    assert len(h.connector.attempts) == 1


def test_rules_return_reply_is_rendered():
    reply = Reply(200, headers=((b"content-length", b"4"), (b"content-type", b"text/plain")), body=b"pong")
    h = Harness(rules=FakeRules(http_request=lambda txn: reply))
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    assert take(ct) == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\ncontent-type: text/plain\r\n\r\npong"
    c.dataReceived(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert ct.value() == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\npong"
    )
    assert ct.disconnecting


def test_silent_drop_reply_closes_without_answer():
    h = Harness(rules=FakeRules(http_request=lambda txn: Reply(403, raw=b"", close=True)))
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    assert ct.value() == b""
    assert ct.disconnecting


def test_backend_rules_run_after_frontend_choice_and_use_server():
    api = proxy("api", kind="backend", servers=[server_model("a1", 9001), server_model("a2", 9002)])
    fe = proxy("fe", kind="frontend", default_backend="api")
    h = Harness(fe, backends=[api])
    seen = []
    be_rules = FakeRules(http_request=lambda txn: seen.append(txn.backend))
    be_rules.has_use_server = True
    be_rules.select_server = lambda txn: "a2"
    h.backend("api").rules = be_rules
    h.fe.need_txn = True  # as FrontendRuntime computes when a backend has rules
    for port in (1, 2, 3):
        c, ct = h.client(port=port)
        c.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    assert seen == ["api", "api", "api"]
    assert [a[0].name for a in h.connector.attempts] == ["a2", "a2", "a2"]


def test_deny_before_body_arrives_closes_after_reply():
    rules = FakeRules(http_request=lambda txn: Reply(403, raw=error_response(403)))
    h = Harness(rules=rules)
    c, ct = h.client()
    c.dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    assert ct.value() == error_response(403, close=True)
    assert ct.disconnecting


def test_tarpit_waits_before_answering():
    rules = FakeRules(http_request=lambda txn: Reply(500, raw=error_response(500), delay_ms=2000))
    h = Harness(rules=rules)
    c, ct = h.client()
    c.dataReceived(GET)
    h.reactor.advance(1.9)
    assert ct.value() == b""
    h.reactor.advance(0.2)
    assert ct.value() == error_response(500)


def test_use_backend_selects_backend():
    api = proxy("api", kind="backend", servers=[server_model("a1", 9001)])
    web = proxy("web", kind="backend", servers=[server_model("w1", 9002)])
    fe = proxy("fe", kind="frontend", default_backend="web")
    rules = FakeRules(select_backend=lambda txn: "api" if txn.path.startswith("/api") else None)
    h = Harness(fe, backends=[api, web], rules=rules)
    c, ct = h.client()
    c.dataReceived(b"GET /api/x HTTP/1.1\r\n\r\n")
    assert h.connector.attempts[-1][0].name == "a1"
    c2, _ = h.client()
    c2.dataReceived(b"GET /page HTTP/1.1\r\n\r\n")
    assert h.connector.attempts[-1][0].name == "w1"


def test_frontend_without_backend_answers_503():
    h = Harness(proxy("fe", kind="frontend"))
    c, ct = h.client()
    c.dataReceived(GET)
    assert ct.value() == error_response(503)


def test_http_response_rule_replaces_response():
    rules = FakeRules(
        http_response=lambda txn: Reply(502, raw=error_response(502)) if txn.status == 500 else None
    )
    h = Harness(rules=rules)
    c, ct, conn, st = one_exchange(h, response=b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    assert ct.value() == error_response(502)
    assert st.disconnecting


def test_http_response_rule_may_edit_headers():
    def edit(txn):
        txn.resp_headers.append([b"X-Added", b"1"])

    h = Harness(rules=FakeRules(http_response=edit))
    c, ct, conn, st = one_exchange(h)
    assert ct.value() == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-added: 1\r\n\r\nhi"


def test_tcp_connection_rule_rejects():
    h = Harness(rules=FakeRules(tcp_connection=lambda sess: sess.src != "10.0.0.1"))
    c, ct = h.client()
    assert ct.disconnecting
    c2, ct2 = h.client(src="10.0.0.2")
    assert not ct2.disconnecting


def test_reuse_never_keeps_a_private_connection_per_client():
    h = Harness(proxy(servers=[server_model()], http_reuse="never"))
    c, ct, conn, st = one_exchange(h)
    assert h.backend().pools["s1"].idle == []  # not shared
    take(st)
    c2, ct2 = h.client(port=40001)
    c2.dataReceived(GET)
    assert len(h.connector.attempts) == 1  # another client never gets it
    c.dataReceived(GET)
    assert len(h.connector.attempts) == 1  # its own client does
    assert st.value() == b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n"
    c.connectionLost(None)
    assert st.disconnecting


def test_monitor_uri_is_answered_by_the_proxy():
    h = Harness(proxy(servers=[server_model()], monitor_uri="/health"))
    c, ct = h.client()
    c.dataReceived(b"GET /health HTTP/1.1\r\n\r\n")
    assert ct.value() == error_response(200)
    assert h.connector.attempts == []
    assert not ct.disconnecting


class FakePort:
    def __init__(self):
        self.reading = True

    def stopReading(self):
        self.reading = False

    def startReading(self):
        self.reading = True


def test_frontend_maxconn_stops_accepting_until_a_connection_closes():
    h = Harness(proxy(servers=[server_model()], maxconn=2))
    port = FakePort()
    h.fe.gate.ports.append(port)
    c1, _ = h.client(port=1)
    assert port.reading
    c2, _ = h.client(port=2)
    assert not port.reading
    c1.connectionLost(None)
    assert port.reading


def test_response_set_status_and_after_response_reach_the_wire():
    def on_response(txn):
        txn.resp_headers.append([b"x-r", b"1"])
        txn.status = 202
        txn.resp_reason = "Fine"

    def after(txn):
        txn.resp_headers.append([b"x-after", b"%d" % txn.status])
        txn.status = 299  # set-status without reason, as the real action does
        txn.resp_reason = None

    h = Harness(rules=FakeRules(http_response=on_response, http_after_response=after))
    c, ct, conn, st = one_exchange(h)
    assert ct.value() == b"HTTP/1.1 299 Success\r\ncontent-length: 2\r\nx-r: 1\r\nx-after: 202\r\n\r\nhi"


def test_after_response_edits_a_rule_reply():
    reply = Reply(200, headers=((b"content-length", b"2"),), body=b"ok")

    def after(txn):
        txn.resp_headers.append([b"x-after", b"yes"])

    h = Harness(rules=FakeRules(http_request=lambda txn: reply, http_after_response=after))
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    assert ct.value() == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-after: yes\r\n\r\nok"


def test_send_proxy_server_gets_the_client_address_first_and_stays_private():
    h = Harness(proxy(servers=[server_model(send_proxy=True)]))
    c, ct, conn, st = one_exchange(h)
    assert take(st) == b"PROXY TCP4 10.0.0.1 127.0.0.1 40000 80\r\nGET /a HTTP/1.1\r\nhost: x\r\n\r\n"
    assert h.backend().pools["s1"].idle == []
    c.dataReceived(GET)
    assert st.value() == b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n"  # same connection, no second header
    c2, _ = h.client(port=2)
    c2.dataReceived(GET)
    c2.dataReceived(GET)
    assert len(h.connector.attempts) == 1  # another client never shares it
