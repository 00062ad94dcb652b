"""tcp-request content inspection: raw-buffer fetches (payload, ClientHello SNI) and the
wait/resume protocol of ProxyRules.tcp_content_wait."""

from __future__ import annotations

import ssl

import pytest

from minilb.rules import samples as S
from minilb.rules.compile import compile_rules
from minilb.rules.payload import NeedMore, parse_sni
from tests.support.rules import config, proxy, session


def client_hello(server_name: str | None) -> bytes:
    """The first flight of a real TLS client (Python's ssl module) for ``server_name``."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def ev(expr: str, data: bytes, final: bool = True):
    sess = session()
    sess.req_data, sess.req_final = data, final
    return S.parse_expr(expr).eval(sess, None)


def test_sni_and_hello_type_of_a_real_client_hello():
    hello = client_hello("api.example.com")
    assert ev("req.ssl_sni", hello) == "api.example.com"
    assert ev("req_ssl_sni,lower", hello) == "api.example.com"
    assert ev("req.ssl_hello_type", hello) == 1
    assert ev("req.ssl_sni", client_hello(None)) is None  # no server_name extension
    assert ev("req.ssl_sni", b"GET / HTTP/1.1\r\n\r\n") is None  # not TLS at all
    assert parse_sni(hello[5:]) == "api.example.com"


def test_incomplete_hello_waits_only_while_more_may_come():
    hello = client_hello("a.example")
    assert ev("req.ssl_sni", hello[:40], final=True) is None
    with pytest.raises(NeedMore):
        ev("req.ssl_sni", hello[:40], final=False)
    with pytest.raises(NeedMore):
        ev("req.ssl_hello_type", hello[:3], final=False)


def test_payload_fetches():
    data = b"\x00\x05hello-world"
    assert ev("req.payload(2,5)", data) == b"hello"
    assert ev("req.payload(2,0)", data) == b"hello-world"
    assert ev("req.payload(2,50)", data) is None
    assert ev("req.payload_lv(0,2)", data) == b"hello"
    assert ev("req.payload_lv(0,2,+1)", data) == b"ello-"
    assert ev("req.len", data) == 13
    with pytest.raises(NeedMore):
        ev("req.payload(2,50)", data, final=False)


def test_sni_routing_waits_for_the_hello_then_decides():
    fe = proxy(
        """
        tcp-request inspect-delay 5s
        tcp-request content set-var(sess.n) var(sess.n,0),add(1)
        tcp-request content reject if { req.payload(0,3) -m bin 474554 }
        tcp-request content accept if { req.ssl_hello_type 1 }
        use_backend api if { req.ssl_sni -i api.example.com }
        use_backend other if { req.ssl_sni -m end .example.com }
        """,
        name="fe",
        kind="frontend",
    )
    rules = compile_rules(
        config(fe, proxy("", name="api", kind="backend"), proxy("", name="other", kind="backend")), {}
    )["fe"]
    assert rules.inspect_delay_ms == 5000
    hello = client_hello("API.example.com")
    sess = session()
    sess.req_final = False
    sess.req_data = hello[:2]
    assert rules.tcp_content_wait(sess) is None  # the reject rule needs 3 bytes
    sess.req_data = hello[:60]
    assert rules.tcp_content_wait(sess) is None  # the hello is not complete yet
    sess.req_data = hello
    assert rules.tcp_content_wait(sess) is True
    assert sess.vars == {"sess.n": 1}  # rules before the waiting one ran once, not per retry
    assert rules.select_backend(sess) == "api"
    sess2 = session()
    sess2.req_data = client_hello("www.example.com")
    assert rules.tcp_content(sess2) is True and rules.select_backend(sess2) == "other"


def test_req_len_waits_for_data_until_final():
    fe = proxy("tcp-request content accept if { req.len ge 4 }\ntcp-request content reject", name="fe")
    rules = compile_rules(config(fe), {})["fe"]
    sess = session()
    sess.req_final, sess.req_data = False, b"ab"
    assert rules.tcp_content_wait(sess) is None
    sess.req_data = b"abcd"
    assert rules.tcp_content_wait(sess) is True
    sess = session()
    sess.req_data = b"ab"  # final: the short buffer does not match, the reject rule applies
    assert rules.tcp_content(sess) is False


def test_http_content_rules_see_the_request_through_txn():
    from tests.support.rules import txn

    fe = proxy("tcp-request content reject if { req.hdr(host) evil }", name="fe")
    rules = compile_rules(config(fe), {})["fe"]
    t = txn(b"GET / HTTP/1.1\r\nHost: evil\r\n\r\n")
    assert rules.tcp_content(t.sess, t) is False


def test_rdp_cookie():
    # TPKT header (3, 0, length), X.224 connection request header, then the cookie line
    request = b"\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00Cookie: mstshash=alice\r\n\x01\x00\x08\x00\x03\x00\x00\x00"
    assert ev("req.rdp_cookie", request) == "alice"
    assert ev("req.rdp_cookie(MSTSHASH)", request) == "alice"
    assert ev("rdp_cookie(msts)", request) is None
    assert ev("req.rdp_cookie_cnt", request) == 1
    fe = proxy("tcp-request content accept if RDP_COOKIE\ntcp-request content reject", name="fe")
    rules = compile_rules(config(fe), {})["fe"]
    sess = session()
    sess.req_final, sess.req_data = False, request[:20]
    assert rules.tcp_content_wait(sess) is None
    sess.req_data = request
    assert rules.tcp_content_wait(sess) is True
