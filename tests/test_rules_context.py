"""Where each sample fetch works (HAProxy's fetch sources and check places, kept in
`minilb.rules.samples`): ``minilb -c`` warns about ACLs that can never match where a
rule uses them and refuses expressions that cannot work there, in haproxy's words
(golden lines taken from haproxy 2.6.12 ``-c``, and compared with it live when it is
installed); at run time such an ACL term finds no sample, so it never matches."""

from __future__ import annotations

import re
import subprocess

import pytest

from minilb.config.load import load_config
from minilb.errors import ALERT, WARNING
from minilb.rules import samples as S
from minilb.rules.compile import check_rules, compile_rules
from tests.conftest import haproxy_binary, requires_haproxy
from tests.support.conformance import Pair, http_status
from tests.support.rules import config, proxy, session, txn

DEFAULTS = """\
defaults
    mode http
    timeout client 1s
    timeout server 1s
    timeout connect 1s
"""

#: a config whose rules use fetches where they can and cannot work (line numbers matter)
GOLDEN_CFG = (
    DEFAULTS
    + """\
frontend fe
    bind 127.0.0.1:18080
    tcp-request inspect-delay 1s
    acl p path /x
    acl mixed path /x
    acl mixed status 200
    acl both status 200
    acl both res.hdr(x) y
    tcp-request connection reject if { ssl_fc }
    tcp-request connection reject if { req.len gt 0 }
    tcp-request connection reject if mixed
    tcp-request connection reject if { src 1.2.3.4 } { fe_name x } { var(txn.a) -m found }
    tcp-request session reject if { ssl_fc } { path /y }
    tcp-request content reject if { status 500 }
    tcp-request content reject if mixed
    http-response set-header X-A 1 if { path /x }
    http-response set-header X-B 1 if p
    http-response set-header X-C 1 if { method GET } || { src 127.0.0.1 } || { var(txn.a) -m found }
    http-response set-header X-C2 1 if METH_GET HTTP_1.1
    http-response set-header X-D 1 if mixed
    http-request set-header X-E 1 if mixed
    http-request set-header X-F 1 if both p
    http-request set-header X-G 1 if { srv_name s } || { be_name be }
    http-after-response set-header X-H 1 if { url /x } { status 200 }
    redirect location /z if { status 302 }
    use_backend be if { status 200 }
    use_backend be if { res.hdr(a) b } p
    default_backend be
backend be
    stick-table type string len 32 size 10
    acl rs status 200
    http-response set-header X-I 1 if { path /x } || { method GET }
    http-request set-header X-J 1 if { srv_name s }
    stick match path if rs
    stick on path if { res.hdr(x) y }
    stick store-request path if { path /x } { status 200 }
    use-server s if { status 200 }
    server s 127.0.0.1:18081
listen li
    bind 127.0.0.1:18082
    tcp-request content reject if { status 500 }
    http-response set-header X-K 1 if { path /x }
    http-request set-header X-L 1 if { status 200 }
    server s 127.0.0.1:18081
"""
)

#: (line, warning) as haproxy 2.6.12 -c prints them for GOLDEN_CFG, in order
GOLDEN_WARNINGS = [
    (
        14,
        "anonymous acl will never match in 'tcp-request connection' because it uses keyword 'ssl_fc' which is incompatible with 'frontend tcp-request connection rule'",
    ),
    (
        15,
        "anonymous acl will never match in 'tcp-request connection' because it uses keyword 'req.len' which is incompatible with 'frontend tcp-request connection rule'",
    ),
    (
        16,
        "acl 'mixed' will never match in 'tcp-request connection' because it only involves keywords that are incompatible with 'frontend tcp-request connection rule'",
    ),
    (
        18,
        "anonymous acl will never match in 'tcp-request session' because it uses keyword 'path' which is incompatible with 'frontend tcp-request session rule'",
    ),
    (
        19,
        "anonymous acl will never match in 'tcp-request content' because it uses keyword 'status' which is incompatible with 'frontend tcp-request content rule'",
    ),
    (
        20,
        "acl 'mixed' involves keyword 'status' which is incompatible with 'frontend tcp-request content rule'",
    ),
    (
        21,
        "anonymous acl will never match because it uses keyword 'path' which is incompatible with 'frontend http-response header rule'",
    ),
    (
        22,
        "acl 'p' will never match because it only involves keywords that are incompatible with 'frontend http-response header rule'",
    ),
    (
        24,
        "acl 'HTTP_1.1' will never match because it only involves keywords that are incompatible with 'frontend http-response header rule'",
    ),
    (
        25,
        "acl 'mixed' involves keywords 'path' which is incompatible with 'frontend http-response header rule'",
    ),
    (
        26,
        "acl 'mixed' involves keywords 'status' which is incompatible with 'frontend http-request header rule'",
    ),
    (
        27,
        "acl 'both' will never match because it only involves keywords that are incompatible with 'frontend http-request header rule'",
    ),
    (
        28,
        "anonymous acl will never match because it uses keyword 'srv_name' which is incompatible with 'frontend http-request header rule'",
    ),
    (
        29,
        "anonymous acl will never match because it uses keyword 'url' which is incompatible with 'frontend http-response header rule'",
    ),
    (
        30,
        "anonymous acl will never match because it uses keyword 'status' which is incompatible with 'frontend http-request header rule'",
    ),
    (
        31,
        "anonymous acl will never match because it uses keyword 'status' which is incompatible with 'frontend use-backend rule'",
    ),
    (
        32,
        "anonymous acl will never match because it uses keyword 'res.hdr' which is incompatible with 'frontend use-backend rule'",
    ),
    (
        37,
        "anonymous acl will never match because it uses keyword 'path' which is incompatible with 'backend http-response header rule'",
    ),
    (
        38,
        "anonymous acl will never match because it uses keyword 'srv_name' which is incompatible with 'backend http-request header rule'",
    ),
    (
        39,
        "acl 'rs' will never match because it only involves keywords that are incompatible with 'backend use-server, balance or stick-match rule'",
    ),
    (
        40,
        "anonymous acl will never match because it uses keyword 'res.hdr' which is incompatible with 'backend use-server, balance or stick-match rule'",
    ),
    (
        41,
        "anonymous acl will never match because it uses keyword 'status' which is incompatible with 'backend use-server, balance or stick-match rule'",
    ),
    (
        42,
        "anonymous acl will never match because it uses keyword 'status' which is incompatible with 'backend use-server, balance or stick-match rule'",
    ),
    (
        46,
        "anonymous acl will never match in 'tcp-request content' because it uses keyword 'status' which is incompatible with 'frontend tcp-request content rule'",
    ),
    (
        47,
        "anonymous acl will never match because it uses keyword 'path' which is incompatible with 'backend http-response header rule'",
    ),
    (
        48,
        "anonymous acl will never match because it uses keyword 'status' which is incompatible with 'frontend http-request header rule'",
    ),
]


def _haproxy_c(path) -> str:
    out = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(path)], capture_output=True, text=True, timeout=20
    )
    return out.stdout + out.stderr


def test_golden_config_diagnostics(tmp_path):
    path = tmp_path / "golden.cfg"
    path.write_text(GOLDEN_CFG)
    conf, diags = load_config([str(path)])
    diags = list(diags) + check_rules(conf)
    assert not [d for d in diags if d.severity == ALERT]
    got = [(d.location.line, d.message) for d in diags if d.severity == WARNING and d.location is not None]
    assert got == GOLDEN_WARNINGS


@requires_haproxy
def test_golden_config_matches_live_haproxy(tmp_path):
    path = tmp_path / "golden.cfg"
    path.write_text(GOLDEN_CFG)
    text = _haproxy_c(path)
    assert "Configuration file is valid" in text, text
    theirs = [(int(n), m) for n, m in re.findall(r"\[WARNING\].*?parsing \[[^\]:]+:(\d+)\] : (.*)", text)]
    assert theirs == GOLDEN_WARNINGS


#: expressions that cannot work where they are used: (proxy kind, rule line, haproxy's alert)
BAD_EXPRESSIONS = [
    (
        "backend",
        "stick on res.hdr(x)",
        "'stick': fetch method 'res.hdr' extracts information from 'HTTP response headers', none of which is "
        "available during request.",
    ),
    (
        "backend",
        "stick match status",
        "'stick': fetch method 'status' extracts information from 'HTTP response', none of which is "
        "available during request.",
    ),
    (
        "frontend",
        "tcp-request connection track-sc0 ssl_fc_sni",
        "'tcp-request connection track-sc0' : fetch method 'ssl_fc_sni' extracts information from "
        "'client-side connection', none of which is available here",
    ),
    (
        "frontend",
        "tcp-request content track-sc0 res.hdr(x)",
        "'tcp-request content track-sc0' : fetch method 'res.hdr(x)' extracts information from "
        "'HTTP response headers', none of which is available here",
    ),
    (
        "frontend",
        "tcp-request connection set-var(sess.x) path",
        "fetch method 'set-var(sess.x)' extracts information from 'HTTP request headers', none of which is "
        "available here",
    ),
    (
        "frontend",
        "http-request track-sc0 be_name",
        "error detected in frontend 'fe' while parsing 'http-request track-sc0' rule : fetch method 'be_name' "
        "extracts information from 'backend', none of which is available here.",
    ),
    (
        "frontend",
        "http-response set-var(txn.x) base",
        "error detected in frontend 'fe' while parsing 'http-response set-var(txn.x)' rule : fetch method "
        "'set-var(txn.x)' extracts information from 'HTTP request headers', none of which is available here.",
    ),
    (
        "frontend",
        "http-response set-header X %[url]",
        "error detected in frontend 'fe' while parsing 'http-response set-header' rule : sample fetch <url]> may "
        "not be reliably used here because it needs 'HTTP request headers' which is not available here.",
    ),
]


def _one_line_cfg(tmp_path, kind: str, line: str):
    text = DEFAULTS
    if kind == "backend":
        text += "frontend fe\n  bind 127.0.0.1:65002\n  default_backend be\n"
        text += f"backend be\n  stick-table type string len 32 size 10\n  {line}\n  server s 127.0.0.1:1\n"
    else:
        text += "frontend fe\n  bind 127.0.0.1:65002\n  stick-table type ip size 10\n"
        text += f"  {line}\n  default_backend be\n"
        text += "backend be\n  server s 127.0.0.1:1\n"
    path = tmp_path / "one.cfg"
    path.write_text(text)
    return path


@pytest.mark.parametrize("kind, line, message", BAD_EXPRESSIONS)
def test_expression_that_cannot_work_there_is_refused(kind, line, message, tmp_path):
    conf, _ = load_config([str(_one_line_cfg(tmp_path, kind, line))])
    assert [d.message for d in check_rules(conf) if d.severity == ALERT] == [message]


@requires_haproxy
@pytest.mark.parametrize("kind, line, message", BAD_EXPRESSIONS)
def test_refusals_are_haproxys_own(kind, line, message, tmp_path):
    text = _haproxy_c(_one_line_cfg(tmp_path, kind, line))
    assert re.findall(r"\[ALERT\].*?parsing \[[^\]]+\] : (.*)", text) == [message]


# --------------------------------------------------------------------------- the table


def test_places_follow_haproxys_table():
    resp_fe = S.rule_places("http-response", "frontend")
    req_fe = S.rule_places("http-request", "frontend")
    conn = S.rule_places("tcp-request connection", "frontend")
    for needs in (S.NEEDS_NONE, S.NEEDS_L4, S.NEEDS_HTTP_REQ_LINE, S.NEEDS_BACKEND):
        assert S.usable(needs, resp_fe), needs  # var(), src, method, be_name work on responses
    assert not S.usable(S.NEEDS_HTTP_REQ, resp_fe)  # path, base, url, req.hdr do not
    assert not S.usable(S.NEEDS_HTTP_RES, req_fe) and not S.usable(S.NEEDS_HTTP_RES_LINE, req_fe)
    assert not S.usable(S.NEEDS_SERVER, req_fe)  # no server is chosen yet
    assert S.usable(S.NEEDS_L4, conn) and not S.usable(S.NEEDS_L5, conn)  # ssl_fc needs the handshake
    assert not S.usable(S.NEEDS_REQ_BUF, conn)
    assert S.usable(S.NEEDS_REQ_BUF, S.rule_places("tcp-request content", "frontend"))
    assert not S.usable(S.NEEDS_BACKEND, req_fe)
    assert S.usable(S.NEEDS_BACKEND, S.rule_places("http-request", "listen"))
    # a fetch reading several sources works where any of them is available
    assert S.usable(S.NEEDS_HTTP_REQ | S.NEEDS_L4, resp_fe)
    assert S.needs_label(S.NEEDS_HTTP_RES_LINE | S.NEEDS_HTTP_REQ) == "HTTP request headers,HTTP response"
    # a listen section is both: haproxy names the first place in its order
    assert S.place_name(S.rule_places("http-response", "listen")) == "backend http-response header rule"
    assert S.place_name(S.rule_places("http-request", "listen")) == "frontend http-request header rule"
    assert S.rule_places("no such rule set", "frontend") == 0
    assert S.missing_need(S.NEEDS_HTTP_REQ, "http-response", "frontend") == "HTTP request headers"
    assert S.missing_need(S.NEEDS_HTTP_REQ_LINE, "http-response", "frontend") is None


def test_every_registered_fetch_reads_known_sources():
    for name, fdef in S.FETCHES.items():
        assert fdef.needs <= set(S.SOURCES), name


# --------------------------------------------------------------------------- run time


def _respond(rules, request: bytes, status: int) -> dict[str, str]:
    t = txn(request)
    t.status = status
    t.resp_headers = []
    rules.http_response(t)
    rules.http_after_response(t)
    return {k.decode(): v.decode() for k, v in t.resp_headers}


def test_response_rule_on_request_path_never_fires():
    fe = proxy(
        """
        acl p path /x
        acl mixed path /x
        acl mixed status 200
        http-response set-header X-A 1 if { path /x }
        http-response set-header X-B 1 if p
        http-response set-header X-N 1 if !{ path /x }
        http-response set-header X-M 1 if mixed
        http-response set-header X-Meth 1 if { method GET }
        http-response set-header X-Src 1 if { src 10.0.0.1 }
        http-after-response set-header X-H 1 if { url /x }
        http-after-response set-header X-S 1 if { status 200 }
        """,
        name="fe",
        kind="frontend",
    )
    rules = compile_rules(config(fe), {})["fe"]
    get_x = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    # haproxy 2.6.12, GET /x answered 404 by the server: only x-n, x-meth (and x-src) are set
    assert _respond(rules, get_x, 404) == {"x-n": "1", "x-meth": "1", "x-src": "1"}
    # the mixed ACL still matches through its usable line (status)
    assert _respond(rules, get_x, 200) == {"x-n": "1", "x-m": "1", "x-meth": "1", "x-src": "1", "x-s": "1"}


def test_same_named_acl_works_in_request_rules_and_not_in_response_rules():
    fe = proxy(
        """
        acl p path /x
        http-request set-header X-Req 1 if p
        http-response set-header X-Res 1 if p
        """,
        name="fe",
        kind="frontend",
    )
    rules = compile_rules(config(fe), {})["fe"]
    t = txn(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert rules.http_request(t) is None
    assert [b"x-req", b"1"] in t.headers
    t.status = 200
    t.resp_headers = []
    rules.http_response(t)
    assert t.resp_headers == []


def test_request_side_rules_on_response_data_never_fire():
    fe = proxy(
        """
        http-request deny if { status 200 }
        http-request deny if { res.hdr(x) -m found }
        use_backend other if { status 200 }
        tcp-request connection reject if { req.len ge 0 }
        tcp-request connection reject if { ssl_fc }
        tcp-request content reject if { status 200 }
        """,
        name="fe",
        kind="frontend",
    )
    rules = compile_rules(config(fe, proxy("", name="other", kind="backend")), {})["fe"]
    t = txn()
    t.status = 200
    t.resp_headers = [[b"x", b"1"]]
    assert rules.http_request(t) is None
    assert rules.select_backend(t) is None
    assert rules.tcp_connection(session(ssl=True)) is True
    assert rules.tcp_content(t.sess, t) is True


USE_BACKEND_CFG = (
    DEFAULTS
    + """\
frontend fe
    bind 127.0.0.1:65004
    http-response set-header X 1
    use_backend be_%[req.hdr(x)] if { req.hdr(x) -m found }
    use_backend be_%[res.hdr(x)]
    default_backend be
backend be
    server s 127.0.0.1:1
"""
)

#: haproxy 2.6.12 -c on USE_BACKEND_CFG: a backend name's %[...] is read at the request
#: headers, whatever rule came before it
USE_BACKEND_ALERTS = [
    "Parsing [{path}:10]: failed to parse use_backend rule 'be_%[res.hdr(x)]' : sample fetch <res.hdr(x)]> may "
    "not be reliably used here because it needs 'HTTP response headers' which is not available here."
]


def test_use_backend_format_is_checked_at_the_request(tmp_path):
    path = tmp_path / "ub.cfg"
    path.write_text(USE_BACKEND_CFG)
    conf, _ = load_config([str(path)])
    alerts = [str(d) for d in check_rules(conf) if d.severity == ALERT]
    assert alerts == [a.format(path=path) for a in USE_BACKEND_ALERTS]


@requires_haproxy
def test_use_backend_format_alert_is_haproxys_own(tmp_path):
    path = tmp_path / "ub.cfg"
    path.write_text(USE_BACKEND_CFG)
    text = _haproxy_c(path)
    assert re.findall(r"\[ALERT\].*? : config : (Parsing .*)", text) == [
        a.format(path=path) for a in USE_BACKEND_ALERTS
    ]


#: rules written after a kind that runs later: haproxy 2.6.12 warns that they still run first
ORDER_CASES = {
    "http-request deny if { path /a }\ntcp-request content reject if { src 10.0.0.9 }": [
        (2, "a 'tcp-request' rule placed after an 'http-request' rule will still be processed before.")
    ],
    "tcp-request content accept\ntcp-request session reject if { src 10.0.0.9 }": [
        (2, "a 'tcp-request' rule placed after a 'tcp-request content' rule will still be processed before.")
    ],
    "tcp-request session accept\ntcp-request connection reject if { src 10.0.0.9 }": [
        (2, "a 'tcp-request' rule placed after a 'tcp-request session' rule will still be processed before.")
    ],
    "use_backend be if { path /b }\ntcp-request connection accept": [
        (2, "a 'tcp-request' rule placed after a 'use_backend' rule will still be processed before.")
    ],
    "redirect location /x if { path /r }\nhttp-request deny": [
        (2, "a 'http-request' rule placed after a 'redirect' rule will still be processed before.")
    ],
    "tcp-request connection accept\ntcp-request content accept\nhttp-request deny\nredirect location /x": [],
}


def _order_cfg(tmp_path, lines: str):
    """(path, number of the frontend line): the rule lines come right after it."""
    body = "".join(f"    {line}\n" for line in lines.splitlines())
    path = tmp_path / "order.cfg"
    path.write_text(
        f"{DEFAULTS}frontend fe\n{body}    bind 127.0.0.1:65005\n    default_backend be\n"
        "backend be\n    server s 127.0.0.1:1\n"
    )
    return path, DEFAULTS.count("\n") + 1


@pytest.mark.parametrize("lines", sorted(ORDER_CASES))
def test_rules_written_out_of_run_order_are_warned_about(lines, tmp_path):
    path, first = _order_cfg(tmp_path, lines)
    conf, _ = load_config([str(path)])
    got = [(d.location.line - first, d.message) for d in check_rules(conf) if d.severity == WARNING]
    assert got == ORDER_CASES[lines]


@requires_haproxy
@pytest.mark.parametrize("lines", sorted(ORDER_CASES))
def test_run_order_warnings_are_haproxys_own(lines, tmp_path):
    path, first = _order_cfg(tmp_path, lines)
    text = _haproxy_c(path)
    theirs = [
        (int(n) - first, m) for n, m in re.findall(r"\[WARNING\].*?parsing \[[^\]:]+:(\d+)\] : (.*)", text)
    ]
    assert theirs == ORDER_CASES[lines]


#: raw request buffer fetches in an HTTP proxy's conditions (tcp mode is fine)
L6_CFG = (
    DEFAULTS
    + """\
frontend fe
    bind 127.0.0.1:65006
    tcp-request inspect-delay 1s
    acl big req.len gt 10
    http-request deny if big
    tcp-request content reject if { req.payload(0,3) -m bin 474554 }
    use_backend be if { req.ssl_sni x }
    redirect location /x if big
    default_backend be
backend be
    stick-table type ip size 10
    stick match src if { req.len gt 0 }
    server s 127.0.0.1:1
listen tcpmode
    mode tcp
    bind 127.0.0.1:65007
    tcp-request inspect-delay 1s
    tcp-request content reject if { req.len gt 10 }
    server s 127.0.0.1:1
"""
)

#: haproxy 2.6.12 -c on L6_CFG: after every parsing message, proxy by proxy, use_backend
#: conditions first, then stick, tcp and http rules (redirects are not checked)
L6_WARNINGS = [
    "parsing [{path}:11] : a 'tcp-request' rule placed after an 'http-request' rule will still be processed before.",
    "parsing [{path}:13] : a 'redirect' rule placed after a 'use_backend' rule will still be processed before.",
    "Proxy 'fe': L6 sample fetches ignored on HTTP proxies (declared at {path}:12).",
    "Proxy 'fe': L6 sample fetches ignored on HTTP proxies (declared at {path}:11).",
    "Proxy 'fe': L6 sample fetches ignored on HTTP proxies (declared at {path}:10).",
    "Proxy 'be': L6 sample fetches ignored on HTTP proxies (declared at {path}:17).",
]


def test_raw_buffer_fetches_in_http_proxies_are_warned_about(tmp_path):
    path = tmp_path / "l6.cfg"
    path.write_text(L6_CFG)
    conf, _ = load_config([str(path)])
    assert [str(d) for d in check_rules(conf)] == [w.format(path=path) for w in L6_WARNINGS]


@requires_haproxy
def test_raw_buffer_warnings_are_haproxys_own(tmp_path):
    path = tmp_path / "l6.cfg"
    path.write_text(L6_CFG)
    text = _haproxy_c(path)
    assert re.findall(r"\[WARNING\].*? : config : (.*)", text) == [w.format(path=path) for w in L6_WARNINGS]


LIVE_CFG = (
    "global\n    stats socket ipv4@127.0.0.1:@STATS@ level admin\n"
    + DEFAULTS
    + """\
frontend fe
    bind 127.0.0.1:@FE@
    stick-table type ip size 10
    acl mixed path /x
    acl mixed status 200
    http-response set-header X-A 1 if { path /x }
    http-response set-header X-N 1 if !{ path /x }
    http-response set-header X-M 1 if mixed
    http-response set-header X-Meth 1 if { method GET }
    http-after-response set-header X-U 1 if { url /x }
    default_backend app
backend app
    server o 127.0.0.1:@ORIGIN@
frontend origin
    bind 127.0.0.1:@ORIGIN@
    http-request return status 404 if { path /x }
    http-request return status 200
"""
)


@pytest.mark.integration
@pytest.mark.interop
@requires_haproxy
def test_response_rules_on_request_fetches_behave_as_in_haproxy():
    """Both processes on one config: the same x-* headers on each answer."""

    def marks(side, path: str) -> list[str]:
        answer = http_status("127.0.0.2", side.port("FE"), path, answer=True)
        assert isinstance(answer, bytes), answer
        head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
        return sorted(line for line in head.split("\r\n") if line.startswith("x-"))

    with Pair.start(LIVE_CFG) as pair:
        for path in ("/x", "/"):
            assert marks(pair.haproxy, path) == marks(pair.minilb, path), path
        assert marks(pair.minilb, "/x") == ["x-meth: 1", "x-n: 1"]
