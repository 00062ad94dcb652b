"""Sample fetches and converters on Txn objects: values, types, casts, occurrences,
argument parsing, maps, log-format strings."""

from __future__ import annotations

import ipaddress

import pytest

from minilb.rules import samples as S
from minilb.rules.logformat import parse_log_format
from tests.support.rules import session, txn

REQ = (
    b"GET /shop/cart/item.html?id=42&ref=mail&id=43 HTTP/1.1\r\n"
    b"Host: WWW.Example.com:8080\r\n"
    b"X-Forwarded-For: 192.168.1.9, 10.0.0.7\r\n"
    b"X-Forwarded-For: 172.16.0.1\r\n"
    b"Cookie: sid=abc; lang=fr\r\n"
    b"Cookie: sid=def\r\n"
    b"Accept: text/html, application/json\r\n"
    b"User-Agent: Mozilla/5.0 (X11, Linux)\r\n"
    b"\r\n"
)


def ev(expr: str, request: bytes = REQ, **sess):
    t = txn(request, session(**sess))
    return S.parse_expr(expr).eval(t.sess, t)


def ev_all(expr: str, request: bytes = REQ):
    t = txn(request)
    return list(S.parse_expr(expr).eval_all(t.sess, t))


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("path", "/shop/cart/item.html"),
        ("url", "/shop/cart/item.html?id=42&ref=mail&id=43"),
        ("query", "id=42&ref=mail&id=43"),
        ("pathq", "/shop/cart/item.html?id=42&ref=mail&id=43"),
        ("base", "WWW.Example.com:8080/shop/cart/item.html"),
        ("method", "GET"),
        ("req.ver", "1.1"),
        ("url_param(id)", "42"),  # the first occurrence
        ("urlp(ref)", "mail"),
        ("url_param(nope)", None),
        ("req.hdr(host)", "WWW.Example.com:8080"),
        ("hdr(HOST)", "WWW.Example.com:8080"),
        # outside ACLs, hdr() gives the last value of the comma-split list
        ("req.hdr(x-forwarded-for)", "172.16.0.1"),
        ("req.hdr(x-forwarded-for,1)", "192.168.1.9"),
        ("req.hdr(x-forwarded-for,2)", "10.0.0.7"),
        ("req.hdr(x-forwarded-for,-2)", "10.0.0.7"),
        ("req.hdr(x-forwarded-for,4)", None),
        ("req.fhdr(x-forwarded-for)", "172.16.0.1"),
        ("req.fhdr(x-forwarded-for,1)", "192.168.1.9, 10.0.0.7"),
        ("req.fhdr(user-agent)", "Mozilla/5.0 (X11, Linux)"),
        ("req.hdr(user-agent)", "Linux)"),
        ("req.hdr_cnt(x-forwarded-for)", 3),
        ("req.fhdr_cnt(x-forwarded-for)", 2),
        ("hdr_cnt(cookie)", 2),
        ("req.hdr_cnt(x-none)", 0),
        ("req.hdr_cnt", 10),
        ("req.hdr(x-none)", None),
        ("req.cook(sid)", "def"),  # last occurrence
        ("cook(lang)", "fr"),
        ("req.cook", "abc"),  # no name: the first cookie
        ("cook(none)", None),
        ("req.cook_cnt(sid)", 2),
        ("src", ipaddress.ip_address("10.0.0.1")),
        ("src_port", 40000),
        ("dst", ipaddress.ip_address("127.0.0.1")),
        ("dst_port", 80),
        ("ssl_fc", False),
        ("ssl_fc_sni", None),
        ("fe_name", "fe"),
        ("be_name", "fe"),
        ("int(-12)", -12),
        ("str(hello)", "hello"),
        ("str('a,b')", "a,b"),
        ("str(a\\,b)", "a,b"),
        ("always_true", True),
        ("always_false", False),
        ("req.hdr_ip(x-forwarded-for,1)", ipaddress.ip_address("192.168.1.9")),
        ("req.hdr_val(x-none)", None),
    ],
)
def test_fetches(expr, expected):
    assert ev(expr) == expected


def test_acl_context_sees_every_occurrence():
    assert ev_all("req.hdr(x-forwarded-for)") == ["192.168.1.9", "10.0.0.7", "172.16.0.1"]
    assert ev_all("req.fhdr(x-forwarded-for)") == ["192.168.1.9, 10.0.0.7", "172.16.0.1"]
    assert ev_all("hdr(accept)") == ["text/html", "application/json"]
    assert ev_all("cook(sid)") == ["abc", "def"]
    assert ev_all("url_param(id)") == ["42", "43"]
    assert ev_all("req.hdr(x-forwarded-for),ipmask(24)") == [
        ipaddress.ip_address("192.168.1.0"),
        ipaddress.ip_address("10.0.0.0"),
        ipaddress.ip_address("172.16.0.0"),
    ]


def test_tls_and_backend_facts():
    assert ev("ssl_fc", ssl=True, sni="a.example") is True
    assert ev("ssl_fc_sni", ssl=True, sni="a.example") == "a.example"
    t = txn(REQ)
    t.backend = "api"
    assert S.parse_expr("be_name").eval(t.sess, t) == "api"


def test_variables_by_scope():
    t = txn(REQ)
    t.vars["txn.user"] = "bob"
    t.sess.vars["sess.n"] = 3
    assert S.parse_expr("var(txn.user)").eval(t.sess, t) == "bob"
    assert S.parse_expr("var(sess.n)").eval(t.sess, t) == 3
    assert S.parse_expr("var(txn.none)").eval(t.sess, t) is None
    assert S.parse_expr("var(txn.none,dflt)").eval(t.sess, t) == "dflt"
    # tcp rule sets run without a Txn: only sess/proc variables exist there
    assert S.parse_expr("var(sess.n)").eval(t.sess, None) == 3
    assert S.parse_expr("var(txn.user)").eval(t.sess, None) is None


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("str(MiXed),lower", "mixed"),
        ("str(MiXed),upper", "MIXED"),
        ("str(hello),length", 5),
        ("str(AB),hex", "4142"),
        ("str(hello),base64", "aGVsbG8="),
        ("str(aGVsbG8=),b64dec", b"hello"),
        ("str(abcdef),bytes(1,3)", b"bcd"),
        ("str(abcdef),bytes(2)", b"cdef"),
        ("str(abcdef),bytes(9)", None),
        ("str(a:b:c:d),field(2,:)", "b"),
        ("str(a:b:c:d),field(-1,:)", "d"),
        ("str(a:b:c:d),field(2,:,2)", "b:c"),
        ("str(a:b:c:d),field(-2,:,2)", "b:c"),
        ("str(a:b;c:d),field(2,:;)", "b"),
        ("str(a:b:c:d),field(5,:)", None),
        ("str(/a//b/c),word(2,/)", "b"),
        ("str(/a//b/c),word(-1,/)", "c"),
        ("str(/a//b/c),word(1,/,2)", "a//b"),  # as haproxy 2.6.12: the text between the words is kept
        ("str(a-b-c),regsub(-,_)", "a_b-c"),
        ("str(a-b-c),regsub(-,_,g)", "a_b_c"),
        ("str(ABC),regsub(b,x,i)", "AxC"),
        ("str(key=val),regsub('^([^=]*)=(.*)$','\\2=\\1')", "val=key"),
        ("int(7),add(3)", 10),
        ("int(7),sub(10)", -3),
        ("int(7),mul(-2)", -14),
        ("int(7),div(2)", 3),
        ("int(-7),div(2)", -3),
        ("int(7),div(0)", 2**63 - 1),
        ("int(7),mod(4)", 3),
        ("str(12abc),add(1)", 13),  # leading digits of a string
        ("str(abc),add(1)", 1),  # no digits reads as 0, as haproxy does
        ("str(),add(1)", None),  # an empty string does not convert
        ("int(5),neg", -5),
        ("int(1),bool", True),
        ("str(10.1.2.3),ipmask(16)", ipaddress.ip_address("10.1.0.0")),
        ("str(2001:db8::1),ipmask(8,32)", ipaddress.ip_address("2001:db8::")),
        ("str(2001:db8::1),ipmask(8)", None),
        ("int(42),hex", "000000000000002A"),
        ("src,ipmask(8)", ipaddress.ip_address("10.0.0.0")),
    ],
)
def test_converters(expr, expected):
    assert ev(expr) == expected


def test_arithmetic_with_a_variable_operand():
    t = txn(REQ)
    t.vars["txn.n"] = 5
    assert S.parse_expr("int(7),add(txn.n)").eval(t.sess, t) == 12
    assert S.parse_expr("int(7),mul(txn.none)").eval(t.sess, t) is None


def test_maps(tmp_path):
    m = tmp_path / "hosts.map"
    m.write_text("# host -> backend\nwww.example.com  web\napi.example.com api\n\n/static/ static\n")
    ips = tmp_path / "ips.map"
    ips.write_text("10.0.0.0/8 internal\n10.1.0.0/16 lab\n0.0.0.0/0 world\n")
    S.clear_map_cache()
    assert ev(f"req.hdr(host),lower,field(1,:),map({m})") == "web"
    assert ev(f"str(nope),map({m})") is None
    assert ev(f"str(nope),map({m},fallback)") == "fallback"
    assert ev(f"str(api.example.com),map_str({m})") == "api"
    assert ev(f"path,map_beg({m},none)", b"GET /static/x.css HTTP/1.1\r\n\r\n") == "static"
    assert ev(f"src,map_ip({ips})", src="10.1.2.3") == "lab"  # the longest prefix wins
    assert ev(f"src,map_ip({ips})", src="10.2.2.3") == "internal"
    assert ev(f"src,map_ip({ips})", src="8.8.8.8") == "world"
    n = tmp_path / "n.map"
    n.write_text("a 1\nb 2\n")
    assert ev(f"str(b),map_str_int({n})") == 2
    with pytest.raises(S.SampleError, match=r"failed to open pattern file </nonexistent.map>"):
        S.parse_expr("path,map(/nonexistent.map)")


@pytest.mark.parametrize(
    "expr, message",
    [
        ("nosuch", "unknown fetch method 'nosuch'"),
        ("pathh", "unknown fetch method 'pathh' (did you mean 'path'?)"),
        ("path,lowr", "unknown converter 'lowr' (did you mean 'lower'?)"),
        ("int(x)", "fetch method 'int' : failed to parse 'x' as type 'integer' at position 1"),
        ("int", "fetch method 'int' : missing arguments (got 0/1)"),
        ("str(a,b)", "fetch method 'str' : end of arguments expected at position 2, but got 'b'"),
        ("path(x)", "fetch method 'path' : expected ')' before 'x)'"),
        (
            "var(x)",
            "invalid args in fetch method 'var' : invalid variable name 'x'. A variable name must be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'",
        ),
        (
            "str(a),regsub((,x)",
            "invalid args in converter 'regsub' : regex '(' is invalid (missing ), unterminated subpattern at position 0)",
        ),
        ("str(a", "missing closing ')' after arguments to 'str'"),
        # haproxy 2.6.12: "invalid args in converter 'field' : Unexpected value 0 for index."
        ("str(a),field(0,/)", "invalid args in converter 'field' : Unexpected value 0 for index"),
    ],
)
def test_expression_errors(expr, message):
    with pytest.raises(S.SampleError) as e:
        S.parse_expr(expr)
    assert str(e.value) == message


def test_casts():
    assert S.as_int("  12") == 0 and S.as_int("-12x") == -12 and S.as_int("") is None
    assert S.as_str(True) == "1" and S.as_str(ipaddress.ip_address("::1")) == "::1"
    assert S.as_ip("10.0.0.1") == ipaddress.ip_address("10.0.0.1") and S.as_ip("nope") is None
    assert S.as_bin(ipaddress.ip_address("1.2.3.4")) == b"\x01\x02\x03\x04"
    assert S.as_bool("0") is False and S.as_bool(3) is True


def test_log_format():
    t = txn(REQ, session(src="1.2.3.4", src_port=555))
    lf = parse_log_format("%ci:%cp %HM %HP%HQ [%[req.hdr(host),lower]] %% %{+Q}[str(q)] [%[req.hdr(none)]]")
    assert lf.render(t.sess, t) == (
        '1.2.3.4:555 GET /shop/cart/item.html?id=42&ref=mail&id=43 [www.example.com:8080] % "q" []'
    )
    assert parse_log_format("plain text").constant == "plain text"
    with pytest.raises(S.SampleError, match="no such format variable 'zz'"):
        parse_log_format("%zz")
    with pytest.raises(S.SampleError, match=r"missing '\]' after 'path'"):
        parse_log_format("%[path")


def test_non_ascii_header_bytes_round_trip():
    t = txn(b"GET / HTTP/1.1\r\nX-N: caf\xc3\xa9\r\n\r\n")
    v = S.parse_expr("req.hdr(x-n)").eval(t.sess, t)
    assert S.to_bytes(v) == b"caf\xc3\xa9"
    assert S.parse_expr("req.hdr(x-n),length").eval(t.sess, t) == 5  # bytes, as haproxy counts


def test_empty_parentheses():
    # accepted by haproxy 2.6.12: `%[always_true()]`, `%[str(a),lower()]`, `%[str()]`
    assert ev("always_true()") is True
    assert ev("str(A),lower()") == "a"
    assert ev("str()") == ""
    assert ev("req.hdr_cnt()") == 10


def test_log_lines_render_missing_samples_as_dash():
    t = txn(REQ)
    assert parse_log_format("[%[req.hdr(none)]]", missing="-").render(t.sess, t) == "[-]"


def test_rand_draws_from_the_injected_generator():
    import random

    from minilb.rules.context import CompileContext

    ctx = CompileContext(None, {}, rng=random.Random(7))
    expr = S.parse_expr("rand(6)", ctx)
    t = txn(REQ)
    draws = [expr.eval(t.sess, t) for _ in range(20)]
    expected = random.Random(7)
    assert draws == [expected.randrange(6) for _ in range(20)]


def test_src_is_parsed_once_per_session_and_follows_a_replaced_src(monkeypatch):
    parsed = []

    def counting_ip_value(text):
        parsed.append(text)
        return ipaddress.ip_address(text)

    monkeypatch.setattr(S, "ip_value", counting_ip_value)
    expr = S.parse_expr("src")
    t = txn(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", session(src="192.0.2.7"))
    assert [expr.eval(t.sess, t) for _ in range(3)] == [ipaddress.ip_address("192.0.2.7")] * 3
    assert parsed == ["192.0.2.7"]  # once per connection, not per request
    t.sess.src = "2001:db8::1"  # e.g. the address a PROXY header announced
    assert expr.eval(t.sess, t) == ipaddress.ip_address("2001:db8::1")
    t.sess.src = ""
    assert expr.eval(t.sess, t) is None
    assert parsed == ["192.0.2.7", "2001:db8::1"]
