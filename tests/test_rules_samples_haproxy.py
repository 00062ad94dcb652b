"""Sample expressions evaluated by real haproxy 2.6 and by minilb on the same request:
haproxy renders each one through `http-request return lf-string "[%[EXPR]]"`."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from minilb.rules import samples as S
from tests.conftest import haproxy_binary, requires_haproxy
from tests.support.rules import session, txn

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
]


@pytest.fixture(scope="module")
def haproxy_answers(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
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
    check = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=20
    )
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen([haproxy_binary(), "-db", "-f", str(cfg)], stderr=subprocess.DEVNULL)
    try:
        answers = {}
        deadline = time.monotonic() + 10
        for i, expr in enumerate(EXPRESSIONS):
            req = REQUEST.replace(b"\r\n\r\n", b"\r\nX-Case: %d\r\n\r\n" % i)
            while True:
                try:
                    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            with conn:
                conn.sendall(req)
                data = b""
                while b"]" not in data.rpartition(b"\r\n\r\n")[2] or b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            body = data.partition(b"\r\n\r\n")[2]
            answers[expr] = body[1:-1]
        return answers
    finally:
        proc.terminate()
        proc.wait(5)


@requires_haproxy
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_same_value_as_haproxy(haproxy_answers, expr):
    i = EXPRESSIONS.index(expr)
    t = txn(REQUEST.replace(b"\r\n\r\n", b"\r\nX-Case: %d\r\n\r\n" % i), session(src="127.0.0.1"))
    value = S.parse_expr(expr).eval(t.sess, t)
    rendered = b"" if value is None else S.to_bytes(S.as_str(value))
    assert rendered == haproxy_answers[expr]
