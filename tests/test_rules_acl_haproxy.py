"""The ACL truth tables of test_rules_acl.py, decided by real haproxy 2.6 and by minilb
from the same config text (minilb reads it with its own config loader): each case is
`http-request return status 200 if { req.hdr(x-case) N } { EXPR }`, else 404."""

from __future__ import annotations

import pytest

from minilb.config.load import load_config
from minilb.rules.compile import compile_rules
from tests.conftest import haproxy_binary, requires_haproxy
from tests.support.procs import free_port
from tests.support.rules import exchange_head, running_haproxy, session, txn
from tests.test_rules_acl import HEADER_CASES, LITERAL_CASES, PATH_CASES

#: (expression, request path, extra header lines)
CASES = (
    [(expr, path, "Host: a\r\n") for expr, path, _ in PATH_CASES if "-f" not in expr]
    + [(expr, "/a", headers) for expr, headers, _ in HEADER_CASES]
    + [
        (expr, "/", "Host: a\r\n")
        for expr, _ in LITERAL_CASES
        if not expr.startswith(("src_port", "dst_port", "be_name", "fe_name"))
    ]
)


def _request(i: int, path: str, headers: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\n{headers}X-Case: {i}\r\n\r\n".encode("latin-1")


def _config(port: int) -> str:
    lines = [
        "defaults",
        "  mode http",
        "  timeout client 5s",
        "  timeout server 5s",
        "  timeout connect 5s",
        "frontend fe",
        f"  bind 127.0.0.1:{port}",
    ]
    for i, (expr, _, _) in enumerate(CASES):
        lines.append(f"  http-request return status 200 if {{ req.hdr(x-case) {i} }} {{ {expr} }}")
        lines.append(f"  http-request return status 404 if {{ req.hdr(x-case) {i} }}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    port = free_port()
    cfg = tmp_path_factory.mktemp("acl") / "acl.cfg"
    cfg.write_text(_config(port))
    conf, _ = load_config([str(cfg)])
    minilb_rules = compile_rules(conf, {})["fe"]
    out = {}
    with running_haproxy(haproxy_binary(), cfg, port):
        for i, (_expr, path, headers) in enumerate(CASES):
            req = _request(i, path, headers)
            status_line = exchange_head(port, req).split(b"\r\n", 1)[0]
            ours = minilb_rules.http_request(txn(req, session(src="127.0.0.1")))
            out[i] = (status_line, ours.status)
    return out


@requires_haproxy
@pytest.mark.parametrize("i", range(len(CASES)), ids=[c[0] for c in CASES])
def test_same_verdict_as_haproxy(answers, i):
    haproxy_line, ours = answers[i]
    assert haproxy_line == b"HTTP/1.1 %d %s" % (ours, b"OK" if ours == 200 else b"Not Found")
