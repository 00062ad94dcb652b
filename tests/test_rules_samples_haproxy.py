"""Sample expressions evaluated by real haproxy 2.6 and by minilb on the same request:
haproxy renders each one through `http-request return lf-string "[%[EXPR]]"`."""

from __future__ import annotations

import pytest

from minilb.rules import samples as S
from tests.conftest import haproxy_binary, requires_haproxy
from tests.support.procs import free_port
from tests.support.rules import exchange_head, running_haproxy, session, txn

REQUEST = (
    b"GET /shop/cart/item.html?id=42&ref=mail&id=43 HTTP/1.1\r\n"
    b"Host: WWW.Example.com:8080\r\n"
    b"X-Forwarded-For: 192.168.1.9, 10.0.0.7\r\n"
    b"X-Forwarded-For: 172.16.0.1\r\n"
    b"Cookie: sid=abc; lang=fr\r\n"
    b"Cookie: sid=def\r\n"
    b'X-Q: "a,b", c\r\n'
    b"User-Agent: Mozilla/5.0 (X11, Linux)\r\n"
    b"\r\n"
)

EXPRESSIONS = [
    "path",
    "url",
    "query",
    "base",
    "method",
    "req.ver",
    "url_param(id)",
    "url_param(nope)",
    "req.hdr(host)",
    "hdr(x-forwarded-for)",
    "req.hdr(x-forwarded-for,1)",
    "req.hdr(x-forwarded-for,-2)",
    "req.fhdr(x-forwarded-for,1)",
    "req.hdr(user-agent)",
    "req.fhdr(user-agent)",
    "req.hdr(x-q)",
    "req.hdr(x-q,1)",
    "req.hdr_cnt(x-forwarded-for)",
    "req.fhdr_cnt(x-forwarded-for)",
    "req.hdr_cnt",
    "req.cook(sid)",
    "req.cook",
    "cook(lang)",
    "req.cook_cnt(sid)",
    "src",
    "src,ipmask(8)",
    "ssl_fc",
    "fe_name",
    "be_name",
    "str(a:b:c:d),field(2,:,2)",
    "str(a:b:c:d),field(-2,:,2)",
    "str(a:b;c:d),field(2,:;)",
    "str(/a//b/c),word(2,/)",
    "str(/a//b/c),word(1,/,2)",
    "str(/a//b/c),word(-1,/)",
    "str(a-b-c),regsub(-,_)",
    "str(a-b-c),regsub(-,_,g)",
    "str(ABC),regsub(b,x,i)",
    "int(-7),div(2)",
    "int(7),mod(4)",
    "str(12abc),add(1)",
    "int(42),hex",
    "str(hello),base64",
    "str(abcdef),bytes(1,3)",
    "str(hello),length",
    "req.hdr(host),lower,field(1,:)",
    "str(2001:db8::1),ipmask(8,32)",
    "int(5),neg",
    "bool(1)",
    "url_param(ref,&)",
    "int(7),div(0)",
    "str(abc),add(1)",
    "str(aGVsbG8=),b64dec",
    "int(2),bool",
    "str(AB),hex",
    "req.hdr(x-forwarded-for,4)",
    "req.hdr_val(x-none)",
    "str(10.1.2.3),ipmask(255.255.0.0)",
    "req.cook(none)",
    "int(7),sub(10)",
    "int(3),mul(-2)",
    "hdr(cookie)",
    "req.fhdr(cookie,1)",
    "str(a.b.c),field(-4,.)",
    "str(x),regsub(y,z)",
    "req.hdr_ip(x-forwarded-for,1)",
    "pathq",
    "urlp(id)",
    "str(-12abc),add(0)",
    "str(MiXeD),upper,lower",
    "str(hello),djb2",
    "str(hello),sdbm",
    "str(hello),crc32",
    "str(hello),djb2(1)",
    "str(hello),crc32(1)",
    "str(hello),sha1,hex",
    "str(hello),sha2,hex",
    "str(hello),sha2(512),hex",
    "str(a%20b+c),url_dec",
    "str(/p+q?a%20b+c),url_dec",
    "str(a+b),url_dec(1)",
    "str(xxhixx),ltrim(x)",
    "str(xxhixx),rtrim(x)",
    "str(mid),concat(<,txn.nope,>)",
    "str(v),set-var(txn.a),upper",
    "int(3),set-var(txn.n),add(1)",
    "base32",
    "base32+src,hex",
    "url32",
    "url32+src,hex",
    "baseq",
    "env(HOME)",
    "env(MINILB_SURELY_UNSET)",
]


@pytest.fixture(scope="module")
def haproxy_answers(tmp_path_factory):
    port = free_port()
    lines = [
        "defaults",
        "  mode http",
        "  timeout client 5s",
        "  timeout server 5s",
        "  timeout connect 5s",
        "listen fe",
        f"  bind 127.0.0.1:{port}",
    ]
    for i, expr in enumerate(EXPRESSIONS):
        lines.append(
            f'  http-request return status 200 content-type text/plain lf-string "[%[{expr}]]" '
            f"if {{ req.hdr(x-case) {i} }}"
        )
    cfg = tmp_path_factory.mktemp("smp") / "smp.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    with running_haproxy(haproxy_binary(), cfg, port):
        answers = {}
        for i, expr in enumerate(EXPRESSIONS):
            data = exchange_head(port, _request(i))
            answers[expr] = data.partition(b"\r\n\r\n")[2][1:-1]
        return answers


def _request(i: int) -> bytes:
    return REQUEST.replace(b"\r\n\r\n", b"\r\nX-Case: %d\r\n\r\n" % i)


@requires_haproxy
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_same_value_as_haproxy(haproxy_answers, expr):
    t = txn(_request(EXPRESSIONS.index(expr)), session(src="127.0.0.1"))
    value = S.parse_expr(expr).eval(t.sess, t)
    rendered = b"" if value is None else S.to_bytes(S.as_str(value))
    assert rendered == haproxy_answers[expr]
