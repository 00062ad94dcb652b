"""ACL truth tables: every match method, -i, operators and ranges, IPs and CIDRs,
multi-valued fetches, conditions (implicit AND, or/||, !, anonymous blocks), the
predefined ACLs and named ACLs spread over several lines."""

from __future__ import annotations

import pytest

from minilb.rules.acl import Acl, parse_acl_expr, parse_condition
from minilb.rules.samples import SampleError
from tests.support.rules import session, split_words, txn


def acl_true(expr: str, request: bytes = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", **sess) -> bool:
    term = parse_acl_expr(split_words(expr))
    t = txn(request, session(**sess))
    return term.pred(t.sess, t)


def req(path: str = "/", headers: str = "Host: a\r\n", method: str = "GET", version: str = "1.1") -> bytes:
    return f"{method} {path} HTTP/{version}\r\n{headers}\r\n".encode("latin-1")


PATH_CASES = [
    ("path /a", "/a", True),
    ("path /a", "/a/", False),
    ("path /a /b", "/b", True),
    ("path -i /A", "/a", True),
    ("path /A", "/a", False),
    ("path_beg /api", "/api/v1", True),
    ("path_beg /api", "/ap", False),
    ("path_beg -i /API /x", "/api/v1", True),
    ("path_end .jpg .png", "/img/a.png", True),
    ("path_end .jpg", "/img/a.jpeg", False),
    ("path_sub admin", "/x/admin/y", True),
    ("path_sub -i ADMIN", "/x/Admin/y", True),
    ("path_sub admin", "/x/adm/y", False),
    ("path_reg ^/u/[0-9]+$", "/u/42", True),
    ("path_reg ^/u/[0-9]+$", "/u/x", False),
    ("path_reg -i ^/U/", "/u/1", True),
    ("path_dir img", "/static/img/a.png", True),
    ("path_dir img", "/static/images/a.png", False),
    ("path_dir /static/img", "/static/img/a.png", True),
    ("path_dom example", "/a/www.example.com/b", True),
    ("path_dom exam", "/a/www.example.com/b", False),
    ("path_len 4", "/abc", True),
    ("path_len gt 4", "/abc", False),
    ("path_len 2:10", "/abc", True),
    ("path -m beg /ab", "/abc", True),
    ("path -m found", "/", True),
    ("path -m len 1", "/", True),
    ("path_end -- -x", "/a-x", True),
    ("url_beg /a?b", "/a?b=1", True),
    ("url /a?b=1", "/a?b=1", True),
    ("query b=1", "/a?b=1", True),
    ("query -m found", "/a", False),
    ("url_param(b) 1", "/a?c=2&b=1", True),
    ("url_param(b) 2", "/a?b=1&b=2", True),  # ACLs see every occurrence
    ("urlp(b) -m int gt 5", "/a?b=7", True),
    ("urlp_val(b) 7", "/a?b=7", True),
]


@pytest.mark.parametrize("expr, path, expected", PATH_CASES)
def test_string_methods_on_path(expr, path, expected):
    assert acl_true(expr, req(path)) is expected


HEADER_CASES = [
    ("hdr(host) a", "Host: a\r\n", True),
    ("hdr(Host) A", "Host: a\r\n", False),
    ("hdr(host) -i A", "Host: a\r\n", True),
    ("hdr_beg(host) www.", "Host: www.x.com\r\n", True),
    ("hdr_end(host) .com", "Host: www.x.com\r\n", True),
    ("hdr_dom(host) x", "Host: www.x.com\r\n", True),
    ("hdr_dom(host) x.com", "Host: www.x.com:8080\r\n", True),
    ("hdr_reg(host) ^w+\\.", "Host: www.x.com\r\n", True),
    # hdr() splits comma-separated values and tries each one
    ("hdr(x-f) b", "X-F: a, b\r\n", True),
    ("req.fhdr(x-f) b", "X-F: a, b\r\n", False),
    ("req.fhdr(x-f) -m str 'a, b'", "X-F: a, b\r\n", True),
    ("hdr(x-f,1) a", "X-F: a, b\r\n", True),
    ("hdr(x-f,1) b", "X-F: a, b\r\n", False),
    ("hdr(x-f,-1) b", "X-F: a, b\r\n", True),
    ("hdr(x-f,2) c", "X-F: a, b\r\nX-F: c\r\n", False),
    ("hdr(x-f,3) c", "X-F: a, b\r\nX-F: c\r\n", True),
    ("hdr(x-q) '\"a,b\"'", 'X-Q: "a,b", c\r\n', True),  # commas inside quotes do not split
    ("hdr(x-q) c", 'X-Q: "a,b", c\r\n', True),
    ("hdr_cnt(x-f) 3", "X-F: a, b\r\nX-F: c\r\n", True),
    ("hdr_cnt(x-f) 0", "Host: a\r\n", True),
    ("req.fhdr_cnt(x-f) 2", "X-F: a, b\r\nX-F: c\r\n", True),
    ("hdr_cnt(x-f) ge 1", "Host: a\r\n", False),
    ("hdr_val(content-length) gt 100", "Content-Length: 101\r\n", True),
    ("hdr_val(content-length) gt 100", "Content-Length: 100\r\n", False),
    ("hdr_ip(x-forwarded-for) 10.0.0.0/8", "X-Forwarded-For: 192.168.0.1, 10.1.2.3\r\n", True),
    ("hdr_ip(x-forwarded-for,1) 10.0.0.0/8", "X-Forwarded-For: 192.168.0.1, 10.1.2.3\r\n", False),
    ("hdr(x-none) -m found", "Host: a\r\n", False),
    ("hdr(host) -m found", "Host: a\r\n", True),
    ("cook(s) abc", "Cookie: t=1; s=abc\r\n", True),
    ("cook(s) abc", "Cookie: t=1; ss=abc\r\n", False),
    ("req.cook(s) -m beg ab", "Cookie: s=abc\r\n", True),
    ("cook_cnt(s) 2", "Cookie: s=1\r\nCookie: s=2\r\n", True),
    ("base www.x.com/a", "Host: www.x.com\r\n", True),
    ("base_beg www.x.com/", "Host: www.x.com\r\n", True),
    ("req.hdr(host),lower www.x.com", "Host: WWW.X.COM\r\n", True),
    ("req.hdr(host),lower -m end .com", "Host: WWW.X.COM\r\n", True),
]


@pytest.mark.parametrize("expr, headers, expected", HEADER_CASES)
def test_header_and_cookie_fetches(expr, headers, expected):
    assert acl_true(expr, req("/a", headers)) is expected


@pytest.mark.parametrize(
    "expr, src, expected",
    [
        ("src 10.0.0.1", "10.0.0.1", True),
        ("src 10.0.0.2", "10.0.0.1", False),
        ("src 10.0.0.0/8", "10.200.3.4", True),
        ("src 10.0.0.0/255.0.0.0", "10.200.3.4", True),
        ("src 192.168.0.0/16 10.0.0.0/8", "10.200.3.4", True),
        ("src 192.168.0.0/16", "10.200.3.4", False),
        ("src 0.0.0.0/0", "1.2.3.4", True),
        ("src ::1", "::1", True),
        ("src 2001:db8::/32", "2001:db8:1::5", True),
        ("src 2001:db8::/32", "2001:db9::5", False),
        ("src 10.0.0.0/8", "::ffff:10.1.1.1", True),  # v4-mapped client vs v4 pattern
        ("src ::ffff:10.0.0.0/104", "10.1.1.1", True),  # v4 client vs v4-mapped pattern
        ("src,ipmask(24) 10.1.2.0", "10.1.2.77", True),
        ("src,ipmask(255.255.0.0) 10.1.0.0", "10.1.2.77", True),
        ("src,ipmask(24,64) 2001:db8:0:1::", "2001:db8:0:1:ab::1", True),
        ("src -f /nonexistent-but-unused -m found", "1.1.1.1", None),
    ],
)
def test_ip_matching(expr, src, expected):
    if expected is None:
        with pytest.raises(SampleError, match="failed to open pattern file"):
            acl_true(expr, src=src)
        return
    assert acl_true(expr, src=src) is expected


LITERAL_CASES = [
    ("int(5) 5", True),
    ("int(5) 4", False),
    ("int(5) eq 5", True),
    ("int(5) gt 5", False),
    ("int(5) gt 4", True),
    ("int(5) ge 5", True),
    ("int(5) lt 5", False),
    ("int(5) le 5", True),
    ("int(5) lt 6", True),
    ("int(5) 1:5", True),
    ("int(5) 6:", False),
    ("int(5) :5", True),
    ("int(5) 1 2 3 5", True),
    ("int(-3) -- -3", True),
    ("int(-3) lt 0", True),
    ("int(5) gt 10 4", True),  # the operator stays in force for later values: 4 -> gt 4
    ("int(0) -m bool", False),
    ("int(2) -m bool", True),
    ("always_true", True),
    ("always_false", False),
    ("str(abc) abc", True),
    ("str(abc) -m len 3", True),
    ("str(abc) -m sub b", True),
    ("str(12),add(3) 15", True),
    ("str(AB),hex 4142", True),
    ("str(hello),length 5", True),
    ("str(ab),hex -m bin 4142", False),  # hex() returns a string; -m bin casts "4142" to bytes b"4142"
    ("str(AB) -m bin 4142", True),
    ("bool(1)", True),
    ("dst_port 80", True),
    ("src_port 40000", True),
    ("ssl_fc", False),
    ("fe_name fe", True),
    ("be_name fe", True),
]


@pytest.mark.parametrize("expr, expected", LITERAL_CASES)
def test_integers_booleans_and_literals(expr, expected):
    assert acl_true(expr) is expected


def test_methods_and_versions():
    assert acl_true("method GET", req(method="GET"))
    assert not acl_true("method GET", req(method="POST"))
    assert acl_true("method -i get", req(method="GET"))
    assert acl_true("req.ver 1.0", req(version="1.0"))


@pytest.mark.parametrize(
    "name, request_bytes, expected",
    [
        ("TRUE", req(), True),
        ("FALSE", req(), False),
        ("METH_GET", req(method="HEAD"), True),
        ("METH_GET", req(method="POST"), False),
        ("METH_POST", req(method="POST"), True),
        ("METH_CONNECT", req("a:443", method="CONNECT"), True),
        ("METH_DELETE", req(method="DELETE"), True),
        ("METH_HEAD", req(method="HEAD"), True),
        ("METH_OPTIONS", req(method="OPTIONS"), True),
        ("METH_PUT", req(method="PUT"), True),
        ("METH_TRACE", req(method="TRACE"), True),
        ("HTTP", req(), True),
        ("HTTP_1.0", req(version="1.0"), True),
        ("HTTP_1.1", req(version="1.0"), False),
        ("HTTP_1.1", req(), True),
        ("HTTP_CONTENT", req(headers="Content-Length: 3\r\n"), True),
        ("HTTP_CONTENT", req(), False),
        ("HTTP_URL_ABS", req("http://x/y"), True),
        ("HTTP_URL_ABS", req("/y"), False),
        ("HTTP_URL_SLASH", req("/y"), True),
        ("HTTP_URL_STAR", req("*", method="OPTIONS"), True),
        ("REQ_CONTENT", req(headers="Content-Length: 3\r\n"), True),
        ("REQ_CONTENT", req(), False),
        ("WAIT_END", req(), True),
    ],
)
def test_predefined_acls(name, request_bytes, expected):
    cond = parse_condition(["if", name], {})
    t = txn(request_bytes)
    assert cond.pred(t.sess, t) is expected


def test_localhost_predefined():
    cond = parse_condition(["if", "LOCALHOST"], {})
    for src, expected in (("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("10.0.0.1", False)):
        t = txn(sess=session(src=src))
        assert cond.pred(t.sess, t) is expected, src


def _named(**lines: list[str]) -> dict[str, Acl]:
    acls = {}
    for name, exprs in lines.items():
        acl = Acl(name)
        for e in exprs:
            acl.add(parse_acl_expr(split_words(e)))
        acls[name] = acl
    return acls


ACLS = _named(
    api=["path_beg /api"],
    admin=["path_beg /admin", "hdr(host) admin.example.com"],  # two lines: OR'ed
    local=["src 10.0.0.0/8"],
    post=["method POST"],
)


@pytest.mark.parametrize(
    "cond, path, host, src, method, expected",
    [
        ("if api", "/api/x", "a", "1.1.1.1", "GET", True),
        ("unless api", "/api/x", "a", "1.1.1.1", "GET", False),
        ("if api local", "/api/x", "a", "1.1.1.1", "GET", False),  # implicit AND
        ("if api local", "/api/x", "a", "10.1.1.1", "GET", True),
        ("if api !local", "/api/x", "a", "1.1.1.1", "GET", True),
        ("if api ! local", "/api/x", "a", "1.1.1.1", "GET", True),
        ("if !!api", "/api/x", "a", "1.1.1.1", "GET", True),
        ("if api or post", "/x", "a", "1.1.1.1", "POST", True),
        ("if api || post", "/x", "a", "1.1.1.1", "GET", False),
        ("if api local || post", "/api", "a", "1.1.1.1", "POST", True),  # AND binds tighter than OR
        ("if api local || post", "/api", "a", "1.1.1.1", "GET", False),
        ("unless api || post", "/x", "a", "1.1.1.1", "GET", True),
        ("if admin", "/x", "admin.example.com", "1.1.1.1", "GET", True),  # second line of 'admin'
        ("if admin", "/admin/", "b", "1.1.1.1", "GET", True),
        ("if admin", "/x", "b", "1.1.1.1", "GET", False),
        ("if { path_beg /api } { src 1.1.1.1 }", "/api", "a", "1.1.1.1", "GET", True),
        ("if !{ path_beg /api }", "/api", "a", "1.1.1.1", "GET", False),
        ("if ! { path_beg /api } || TRUE", "/api", "a", "1.1.1.1", "GET", True),
        ("if { path_beg /api } !{ method GET }", "/api", "a", "1.1.1.1", "POST", True),
        ("if", "/api", "a", "1.1.1.1", "GET", False),  # empty condition never matches
        ("unless", "/api", "a", "1.1.1.1", "GET", True),
    ],
)
def test_conditions(cond, path, host, src, method, expected):
    c = parse_condition(split_words(cond), ACLS)
    t = txn(req(path, f"Host: {host}\r\n", method), session(src=src))
    assert c.pred(t.sess, t) is expected


@pytest.mark.parametrize(
    "words, message",
    [
        ("if nosuch", "no such ACL : 'nosuch'"),
        ("if apii", "no such ACL : 'apii' (did you mean 'api'?)"),
        ("if { path /a", "missing closing '}' in condition"),
        (
            "if { path_reg ( }",
            "regex '(' is invalid (error=missing ), unterminated subpattern, erroffset=0)",
        ),
    ],
)
def test_condition_errors(words, message):
    with pytest.raises(SampleError) as e:
        parse_condition(split_words(words), ACLS)
    assert str(e.value) == message


@pytest.mark.parametrize(
    "expr, message",
    [
        # wording as haproxy 2.6.12 `haproxy -c` reports it (see tests/test_rules_compile.py)
        (
            "pth_beg /x",
            "unknown fetch method 'pth_beg' in ACL expression 'pth_beg' (did you mean 'path_beg'?)",
        ),
        ("hdr_cnt(host) foo", "'foo' is not a number"),
        ("hdr_cnt gt x", "'x' is neither a number nor a supported operator"),
        ("src 1.2.3.400", "'1.2.3.400' is not a valid IPv4 or IPv6 address"),
        ("src 10.0.0.0/33", "'10.0.0.0/33' is not a valid IPv4 or IPv6 address"),
        ("path -m foo /a", "unknown matching method 'foo' when parsing ACL expression"),
        ("str(a),foo", "unknown converter 'foo' in ACL expression 'str(a),foo'"),
        (
            "req.hdr(host,x) a",
            "fetch method 'req.hdr' : failed to parse 'x' as type 'integer' at position 2 in ACL expression 'req.hdr(host,x)'",
        ),
        (
            "src,ipmask(33) 1.2.3.4",
            "invalid arg 1 in converter 'ipmask' : failed to parse '33' as type 'IPv4 mask' at position 1 in ACL expression 'src,ipmask(33)'",
        ),
        (
            "int(-3) -3",
            "'-3' is not a valid ACL option. Please use '--' before any pattern beginning with a '-'",
        ),
        (
            "var(txn.x) a",
            "matching method must be specified first (using '-m') when using a sample fetch of this type ('var')",
        ),
    ],
)
def test_acl_expression_errors(expr, message):
    with pytest.raises(SampleError) as e:
        parse_acl_expr(split_words(expr))
    assert str(e.value) == message


def test_pattern_file_and_warning_for_no_pattern(tmp_path):
    f = tmp_path / "bad_ips.lst"
    f.write_text("# blocked\n192.168.0.0/16\n\n10.9.9.9\n")
    term = parse_acl_expr(["src", "-f", str(f)])
    for src, expected in (("192.168.3.4", True), ("10.9.9.9", True), ("10.9.9.8", False)):
        t = txn(sess=session(src=src))
        assert term.pred(t.sess, t) is expected
    warnings: list[str] = []
    term = parse_acl_expr(["path_beg"], warnings=warnings)
    assert "no pattern to match against were provided" in warnings[0]
    t = txn()
    assert term.pred(t.sess, t) is False


def test_var_with_explicit_method():
    term = parse_acl_expr(["var(txn.x)", "-m", "str", "yes"])
    t = txn()
    assert term.pred(t.sess, t) is False
    t.vars["txn.x"] = "yes"
    assert term.pred(t.sess, t) is True
    term = parse_acl_expr(["var(txn.n)", "-m", "int", "gt", "3"])
    t.vars["txn.n"] = 4
    assert term.pred(t.sess, t) is True


def test_sni_of_the_tls_frontend():
    for expr, expected in (
        ("ssl_fc_sni a.example.com", True),
        ("ssl_fc_sni_end .example.com", True),
        ("ssl_fc_sni_reg ^b", False),
    ):
        assert acl_true(expr, ssl=True, sni="a.example.com") is expected, expr
    assert acl_true("ssl_fc_sni -m found") is False
