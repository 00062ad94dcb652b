"""compile_rules / check_rules: diagnostics with file:line in haproxy's words (checked
against real `haproxy -c` when it is installed), every problem of a config in one
ConfigError, name resolution (ACLs, backends, servers, tables), use_backend and
use-server selection, tcp rule sets, and configs read through the config loader."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from minilb.errors import ALERT, WARNING, ConfigError
from minilb.rules import samples as S
from minilb.rules.compile import check_rules, compile_rules
from tests.conftest import haproxy_binary, requires_haproxy
from tests.support.rules import config, proxy, session, txn

HEADER_LINES = "acl a1 path_beg /x\n"

#: rule line -> the message haproxy 2.6.12 prints for it (`haproxy -c`, the part after
#: "parsing [file:line] : "), with minilb's did-you-mean hints where haproxy has none
BAD_LINES = {
    "http-request deny if nosuch": "error detected while parsing an 'http-request deny' condition : no such ACL : 'nosuch'.",
    "http-request deny deny_status 999": "error detected in frontend 'fe' while parsing 'http-request deny' rule : Unexpected status code '999'.",
    "http-request redirect location": "error detected in frontend 'fe' while parsing 'http-request redirect' rule : missing argument for 'location'.",
    "http-request set-header": "error detected in frontend 'fe' while parsing 'http-request set-header' rule : expects exactly 2 arguments.",
    "http-request set-var(foo.x) str(1)": "error detected in frontend 'fe' while parsing 'http-request set-var(foo.x)' rule : invalid variable name 'foo.x'. A variable name must be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'.",
    "http-request set-header X %[nosuch_fetch]": "error detected in frontend 'fe' while parsing 'http-request set-header' rule : failed to parse sample expression <nosuch_fetch]> : unknown fetch method 'nosuch_fetch'.",
    "http-request return status 200 file /nonexistent": "error detected in frontend 'fe' while parsing 'http-request return' rule : error opening file '/nonexistent'.",
    "http-request deny if { path_beg(x) /a }": "error detected while parsing an 'http-request deny' condition : ACL keyword 'path_beg' : expected ')' before 'x)'.",
    "http-request deny if { path -m foo /a }": "error detected while parsing an 'http-request deny' condition : unknown matching method 'foo' when parsing ACL expression.",
    "http-request deny if { req.hdr(host,x) a }": "error detected while parsing an 'http-request deny' condition : fetch method 'req.hdr' : failed to parse 'x' as type 'integer' at position 2 in ACL expression 'req.hdr(host,x)'.",
    "http-request deny if { int(x) 1 }": "error detected while parsing an 'http-request deny' condition : fetch method 'int' : failed to parse 'x' as type 'integer' at position 1 in ACL expression 'int(x)'.",
    "http-request deny if { str(a),foo }": "error detected while parsing an 'http-request deny' condition : unknown converter 'foo' in ACL expression 'str(a),foo'.",
    "http-request deny if { str(a),lower(1) a }": "error detected while parsing an 'http-request deny' condition : invalid arg 1 in converter 'lower' : expected ')' before '1)' in ACL expression 'str(a),lower(1)'.",
    # haproxy 2.6 has no HTTP_3.0 predefined ACL
    "http-request deny if HTTP_3.0": "error detected while parsing an 'http-request deny' condition : no such ACL : 'HTTP_3.0' (did you mean 'HTTP_2.0'?).",
    "http-request deny if { src,ipmask(33) 1.2.3.4 }": "error detected while parsing an 'http-request deny' condition : invalid arg 1 in converter 'ipmask' : failed to parse '33' as type 'IPv4 mask' at position 1 in ACL expression 'src,ipmask(33)'.",
    "http-request deny if { hdr_cnt gt x }": "error detected while parsing an 'http-request deny' condition : 'x' is neither a number nor a supported operator.",
    "http-request deny if { src 10.0.0.0/33 }": "error detected while parsing an 'http-request deny' condition : '10.0.0.0/33' is not a valid IPv4 or IPv6 address.",
    "http-request deny if { path /a": "error detected while parsing an 'http-request deny' condition : missing closing '}' in condition.",
    "http-request deny foo": "'http-request deny' expects either 'if' or 'unless' followed by a condition but found 'foo'.",
    "http-request add-header X a b": "'http-request add-header' expects either 'if' or 'unless' followed by a condition but found 'b'.",
    "http-request set-header X %[str(a)": "error detected in frontend 'fe' while parsing 'http-request set-header' rule : missing ']' after 'str(a)'.",
    "redirect location /x code 305": "error detected in frontend 'fe' while parsing redirect rule : 'code': unsupported HTTP code '305' (must be one of 301, 302, 303, 307 or 308).",
    "http-request set-var(txn.x)": "error detected in frontend 'fe' while parsing 'http-request set-var(txn.x)' rule : missing fetch method.",
    "http-request deny deny_status 418": "error detected in frontend 'fe' while parsing 'http-request deny' rule : status code '418' not handled by default with 'default-errorfiles' argument..",
    "http-request return status 100": "error detected in frontend 'fe' while parsing 'http-request return' rule : Unexpected status code '100'.",
    "http-request return string foo": "error detected in frontend 'fe' while parsing 'http-request return' rule : a content type must be defined when non-empty payload is configured.",
    "http-request return status 204 content-type text/plain string foo": "error detected in frontend 'fe' while parsing 'http-request return' rule : No body expected for 204 responses.",
    "http-request return status 200 content-type a string b hdr X": "error detected in frontend 'fe' while parsing 'http-request return' rule : 'hdr' expects <name> and <value> as arguments.",
    "http-request redirect foo /x": "error detected in frontend 'fe' while parsing 'http-request redirect' rule : expects 'code', 'prefix', 'location', 'scheme', 'set-cookie', 'clear-cookie', 'drop-query', 'ignore-empty' or 'append-slash' (was 'foo').",
    "http-request redirect location /x code": "error detected in frontend 'fe' while parsing 'http-request redirect' rule : missing argument for 'code'.",
    "http-response set-status 99": "error detected in frontend 'fe' while parsing 'http-response set-status' rule : expects an integer status code between 100 and 999.",
    "http-request del-header X -m foo": "error detected in frontend 'fe' while parsing 'http-request del-header' rule : -m with unsupported matching method 'foo'.",
    "http-request replace-header X": "error detected in frontend 'fe' while parsing 'http-request replace-header' rule : expects exactly 3 arguments.",
    "http-request set-path": "error detected in frontend 'fe' while parsing 'http-request set-path' rule : expects exactly 1 argument <format>.",
    "http-request set-var(txn.x) foo_fetch": "error detected in frontend 'fe' while parsing 'http-request set-var(txn.x)' rule : unknown fetch method 'foo_fetch'.",
    "http-request unset-var(txn.x) foo": "'http-request unset-var(txn.x)' expects either 'if' or 'unless' followed by a condition but found 'foo'.",
    "http-request deny if { var(foo) -m found }": "error detected while parsing an 'http-request deny' condition : invalid args in fetch method 'var' : invalid variable name 'foo'. A variable name must be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check' in ACL expression 'var(foo)'.",
}

BAD_LINES.update(
    {
        "http-request set-var(txn.x) res.hdr(x)": "error detected in frontend 'fe' while parsing 'http-request set-var(txn.x)' rule : fetch method 'set-var(txn.x)' extracts information from 'HTTP response headers', none of which is available here.",
        "http-response set-var(txn.x) path": "error detected in frontend 'fe' while parsing 'http-response set-var(txn.x)' rule : fetch method 'set-var(txn.x)' extracts information from 'HTTP request headers', none of which is available here.",
        "http-request set-header X %[status]": "error detected in frontend 'fe' while parsing 'http-request set-header' rule : sample fetch <status]> may not be reliably used here because it needs 'HTTP response' which is not available here.",
        "http-after-response set-header X %[path]": "error detected in frontend 'fe' while parsing 'http-after-response set-header' rule : sample fetch <path]> may not be reliably used here because it needs 'HTTP request headers' which is not available here.",
    }
)

#: lines haproxy accepts with only a warning (the warning text when there is one)
WARN_LINES = {
    "http-response set-header X y if { path /a }": "anonymous acl will never match because it uses keyword 'path' which is incompatible with 'frontend http-response header rule'",
    "http-request deny if { status 200 }": "anonymous acl will never match because it uses keyword 'status' which is incompatible with 'frontend http-request header rule'",
    "http-after-response set-header X y if { req.hdr(x) a }": "anonymous acl will never match because it uses keyword 'req.hdr' which is incompatible with 'frontend http-response header rule'",
    "http-response set-header X y if { src 1.2.3.4 }": None,
    "use_backend be if a1\nhttp-request deny if a1": "a 'http-request' rule placed after a 'use_backend' rule will still be processed before.",
    "redirect location /x if a1\nhttp-request deny if a1": "a 'http-request' rule placed after a 'redirect' rule will still be processed before.",
    "use_backend be if a1\nredirect location /x if a1": "a 'redirect' rule placed after a 'use_backend' rule will still be processed before.",
    "tcp-request content set-var(sess.x) path": None,
    "tcp-request connection reject if { path /a }": "anonymous acl will never match in 'tcp-request connection' because it uses keyword 'path' which is incompatible with 'frontend tcp-request connection rule'",
    "tcp-request connection accept if { req.hdr(host) a }": "anonymous acl will never match in 'tcp-request connection' because it uses keyword 'req.hdr' which is incompatible with 'frontend tcp-request connection rule'",
    "http-request return content-type text/plain": "content-type 'text/plain' ignored by the http reply because neither errorfile nor payload defined.",
    "http-request return status 200 content-type a string b hdr content-length 5": "header 'content-length' always ignored by the http reply.",
    "http-request deny if { path_beg /a } || TRUE": None,
    "http-request deny if { always_true -m found x }": None,
    "http-request deny if": None,
    "http-request deny if a1 or": None,
    "http-request deny deny_status 200": None,
    "http-request return status 418": None,
    "http-request deny status 429": None,
}


def _check(line: str):
    p = proxy(HEADER_LINES + line, name="fe", kind="frontend", start_line=8)
    return check_rules(config(p, proxy("", name="be", kind="backend")))


@pytest.mark.parametrize("line", sorted(BAD_LINES))
def test_bad_rule_is_reported_at_its_line(line):
    diags = [d for d in _check(line) if d.severity == ALERT]
    assert [str(d) for d in diags] == [f"parsing [test.cfg:9] : {BAD_LINES[line]}"]


@pytest.mark.parametrize("line", sorted(WARN_LINES))
def test_accepted_lines_and_their_warnings(line):
    diags = _check(line)
    assert not [d for d in diags if d.severity == ALERT]
    expected = WARN_LINES[line]
    assert [d.message for d in diags if d.severity == WARNING] == ([expected] if expected else [])


def _haproxy_messages(line: str, tmp_path) -> tuple[list[str], list[str]]:
    cfg = tmp_path / "one.cfg"
    cfg.write_text(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n"
        f"frontend fe\n  bind 127.0.0.1:65001\n  {HEADER_LINES}  {line.replace(chr(10), chr(10) + '  ')}\n"
        "  default_backend be\n"
        "backend be\n  server s1 127.0.0.1:1\n"
    )
    out = subprocess.run([haproxy_binary(), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=20)
    text = out.stdout + out.stderr
    alerts = re.findall(r"\[ALERT\].*?parsing \[[^\]]+\] ?: (.*)", text)
    warnings = re.findall(r"\[WARNING\].*?parsing \[[^\]]+\] ?: (.*)", text)
    return alerts, warnings


@requires_haproxy
@pytest.mark.parametrize("line", sorted(BAD_LINES))
def test_messages_are_haproxys_own(line, tmp_path):
    alerts, _ = _haproxy_messages(line, tmp_path)
    ours = re.sub(r" \(did you mean '[^']*'\?\)", "", BAD_LINES[line])  # minilb adds hints
    assert alerts == [ours]


@requires_haproxy
def test_warnings_are_haproxys_own(tmp_path):
    for line, expected in WARN_LINES.items():
        _, warnings = _haproxy_messages(line, tmp_path)
        assert warnings == ([expected] if expected else []), line


def test_all_problems_reported_together_in_file_order():
    p = proxy(
        """
        acl ok path /ok
        http-request deny if nosuch
        http-request dney
        http-request deny if ok
        use_backend nowhere if ok
        acl late path /late
        """,
        name="fe",
        kind="frontend",
    )
    with pytest.raises(ConfigError) as e:
        compile_rules(config(p), {})
    lines = [(d.location.line, d.severity) for d in e.value.diagnostics]
    assert lines == [(2, ALERT), (3, ALERT), (5, ALERT)]
    assert "Did you mean 'deny' maybe ?" in str(e.value.diagnostics[1])
    assert str(e.value.diagnostics[2]).endswith("unable to find required use_backend: 'nowhere'.")


def test_acl_must_be_declared_before_use():
    # haproxy 2.6: "no such ACL : 'a2'" when the acl line comes after the rule
    p = proxy("http-request deny if a2\nacl a2 path_beg /x", name="fe", kind="frontend")
    diags = check_rules(config(p))
    assert [str(d) for d in diags] == [
        "parsing [test.cfg:1] : error detected while parsing an 'http-request deny' condition : no such ACL : 'a2'."
    ]


def test_use_backend_typo_gets_did_you_mean():
    p = proxy("use_backend apii if TRUE", name="fe", kind="frontend")
    api = proxy("", name="api", kind="backend")
    diags = check_rules(config(p, api))
    assert (
        str(diags[0])
        == "parsing [test.cfg:1] : Proxy 'fe': unable to find required use_backend: 'apii' (did you mean 'api'?)."
    )


def test_use_backend_selection_first_match_wins():
    fe = proxy(
        """
        acl is_api path_beg /api
        acl is_static path_end .css .js
        use_backend api if is_api
        use_backend static if is_static || { hdr(host) -i static.example.com }
        use_backend catchall if { path_beg /api/v2 }
        use_backend be_%[req.hdr(x-tenant),lower] if { req.hdr(x-tenant) -m found }
        """,
        name="fe",
        kind="frontend",
    )
    names = ("api", "static", "catchall")
    rules = compile_rules(config(fe, *(proxy("", name=n, kind="backend") for n in names)), {})["fe"]
    assert rules.has_use_backend
    cases = {
        b"GET /api/v2/x HTTP/1.1\r\nHost: a\r\n\r\n": "api",
        b"GET /a.css HTTP/1.1\r\nHost: a\r\n\r\n": "static",
        b"GET / HTTP/1.1\r\nHost: STATIC.example.com\r\n\r\n": "static",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Tenant: Blue\r\n\r\n": "be_blue",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n": None,
    }
    for request, expected in cases.items():
        assert rules.select_backend(txn(request)) == expected, request


def test_use_server_in_backend():
    be = proxy("use-server s1 if { path /pin }", name="be", kind="backend")
    rules = compile_rules(config(be), {})["be"]
    assert rules.select_server(txn(b"GET /pin HTTP/1.1\r\n\r\n")) == "s1"
    assert rules.select_server(txn(b"GET /x HTTP/1.1\r\n\r\n")) is None
    bad = proxy("use-server s9", name="be", kind="backend")
    diags = check_rules(config(bad))
    assert (
        str(diags[0])
        == "parsing [test.cfg:1] : backend 'be' : unable to find server 's9' referenced in a 'use-server' rule."
    )


def test_tcp_rule_sets():
    fe = proxy(
        """
        acl blocked src 10.9.0.0/16
        tcp-request connection reject if blocked
        tcp-request connection accept if { src 10.0.0.0/8 }
        tcp-request connection reject
        tcp-request content reject if { dst_port 25 }
        """,
        name="fe",
        kind="frontend",
    )
    rules = compile_rules(config(fe), {})["fe"]
    assert rules.has_tcp_connection and rules.has_tcp_content and not rules.has_http_request
    assert rules.tcp_connection(session(src="10.9.1.1")) is False
    assert rules.tcp_connection(session(src="10.1.1.1")) is True
    assert rules.tcp_connection(session(src="192.168.1.1")) is False  # falls to the final reject
    assert rules.tcp_content(session(dst_port=25)) is False
    assert rules.tcp_content(session(dst_port=80)) is True


def test_no_rules_means_everything_passes():
    rules = compile_rules(config(proxy("", name="fe")), {})["fe"]
    t = txn()
    assert not (rules.has_http_request or rules.has_tcp_connection or rules.has_use_backend)
    assert rules.http_request(t) is None and rules.select_backend(t) is None
    assert rules.tcp_connection(t.sess) is True


def test_table_arguments_resolve_once_through_the_tables_mapping():
    seen = []

    def fetch(sess, txn, table):
        seen.append(table)
        return 1

    S.register_fetch("test_table_probe", fetch, args=(S.ARG_TABLE,), out=S.SINT)
    fe = proxy("http-request deny if { test_table_probe(rl) 1 }", name="fe")
    table_object = object()
    rules = compile_rules(config(fe), {"rl": table_object})["fe"]
    assert rules.http_request(txn()).status == 403
    assert seen == [table_object]
    bad = proxy("http-request deny if { test_table_probe(rll) 1 }", name="fe")
    with pytest.raises(ConfigError) as e:
        compile_rules(config(bad), {"rl": table_object})
    diags = e.value.diagnostics
    # haproxy 2.6.12 for `sc_http_req_rate(0,nosuch)`: "unable to find table 'nosuch' referenced
    # in arg 2 of ACL keyword 'sc_http_req_rate' in proxy 'fe'."
    assert diags[0].message == (
        "unable to find table 'rll' referenced in arg 1 of ACL keyword 'test_table_probe' in proxy 'fe' "
        "(did you mean 'rl'?)."
    )
    bad = proxy("http-request set-var(txn.x) str(a),test_table_conv(nosuch)", name="fe")
    S.register_converter("test_table_conv", lambda v, tab: v, args=(S.ARG_TABLE,))
    diags = check_rules(config(bad))
    assert diags[0].message == (
        "unable to find table 'nosuch' referenced in arg 1 of conversion keyword 'test_table_conv' for sample "
        "fetch keyword 'str' in http-request expression in proxy 'fe'."
    )


def test_check_rules_uses_table_specs_as_placeholders(tmp_path):
    from minilb.config.load import load_config

    cfg = tmp_path / "t.cfg"
    cfg.write_text(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n"
        "frontend fe\n  bind 127.0.0.1:0\n"
        "  stick-table type ip size 1k store gpc0\n"
        "  http-request deny if { test_table_probe(fe) 1 }\n"
        "  http-request deny if { test_table_probe(nope) 1 }\n"
        "  default_backend be\n"
        "backend be\n  server s1 127.0.0.1:1\n"
    )
    S.register_fetch("test_table_probe", lambda s, t, tab: 1, args=(S.ARG_TABLE,), out=S.SINT)
    conf, _ = load_config([str(cfg)])
    diags = check_rules(conf)
    assert [(d.location.line, d.severity) for d in diags] == [(10, ALERT)]


def test_config_text_through_the_loader(tmp_path):
    from minilb.config.load import load_config

    cfg = tmp_path / "site.cfg"
    cfg.write_text(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n"
        "frontend fe\n  bind 127.0.0.1:0\n"
        "  acl is_admin path_beg /admin\n"
        "  acl trusted src 10.0.0.0/8 192.168.0.0/16\n"
        "  http-request deny deny_status 429 if is_admin !trusted\n"
        "  http-request set-header X-Forwarded-Proto https if { ssl_fc }\n"
        "  http-request return status 200 content-type text/plain string ok if { path /health }\n"
        "  use_backend admin if is_admin\n"
        "  default_backend web\n"
        "backend admin\n  server a1 127.0.0.1:1\n"
        "backend web\n  server w1 127.0.0.1:2\n"
    )
    conf, _ = load_config([str(cfg)])
    rules = compile_rules(conf, {})
    fe = rules["fe"]
    assert fe.http_request(txn(b"GET /admin HTTP/1.1\r\n\r\n", session(src="8.8.8.8"))).status == 429
    t = txn(b"GET /admin HTTP/1.1\r\n\r\n", session(src="10.1.1.1", ssl=True))
    assert fe.http_request(t) is None
    assert [b"x-forwarded-proto", b"https"] in t.headers
    assert fe.select_backend(t) == "admin"
    assert fe.http_request(txn(b"GET /health HTTP/1.1\r\n\r\n")).body == b"ok"
    assert not rules["web"].has_http_request


def test_listen_rules_and_inspect_delay(tmp_path):
    from minilb.config.load import load_config

    cfg = tmp_path / "l.cfg"
    cfg.write_text(
        "defaults\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n"
        "listen l\n  mode tcp\n  bind 127.0.0.1:0\n"
        "  tcp-request inspect-delay 3s\n"
        "  tcp-request content reject if { src 1.2.3.4 }\n"
        "  server s 127.0.0.1:1\n"
    )
    conf, _ = load_config([str(cfg)])
    rules = compile_rules(conf, {})["l"]
    assert rules.inspect_delay_ms == 3000
    assert rules.tcp_content(session(src="1.2.3.4")) is False


def test_acl_lines_after_the_rule_still_count():
    # haproxy 2.6.12 denies both /x and /y here (the rule references the ACL, not a copy)
    fe = proxy("acl a path /x\nhttp-request deny if a\nacl a path /y\nuse_backend be if a", name="fe")
    rules = compile_rules(config(fe, proxy("", name="be", kind="backend")), {})["fe"]
    for path, status in ((b"/x", 403), (b"/y", 403)):
        assert rules.http_request(txn(b"GET " + path + b" HTTP/1.1\r\n\r\n")).status == status
    assert rules.http_request(txn(b"GET /z HTTP/1.1\r\n\r\n")) is None
    assert rules.select_backend(txn(b"GET /y HTTP/1.1\r\n\r\n")) == "be"


def test_feature_keywords_compile_with_their_condition():
    from minilb.rules.compile import register_rule_keyword

    def compile_pin(words, cond, ctx):
        expr = ctx.parse_expr(words[0])
        return lambda t: (cond is None or cond.pred(t.sess, t)) and expr.eval(t.sess, t)

    register_rule_keyword("test-pin on", compile_pin)
    be = proxy("acl p path_beg /p\ntest-pin on path if p\nacl p path_beg /q", name="be", kind="backend")
    rules = compile_rules(config(be), {})["be"]
    (pin,) = rules.extra["test-pin on"]
    assert pin(txn(b"GET /q1 HTTP/1.1\r\n\r\n")) == "/q1"
    assert pin(txn(b"GET /z HTTP/1.1\r\n\r\n")) is False


def test_unknown_table_of_a_tracking_action_in_haproxys_words():
    pytest.importorskip("minilb.stick.fetches")
    diags = check_rules(config(proxy("http-request track-sc0 src table nosuch", name="fe", kind="frontend")))
    # haproxy 2.6.12: "Proxy 'fe': unable to find table 'nosuch' referenced by track-sc0."
    assert [d.message for d in diags] == [
        "Proxy 'fe': unable to find table 'nosuch' referenced by track-sc0."
    ]


def test_warnings_of_a_good_config_are_returned():
    diags = []
    compile_rules(config(proxy("tcp-request connection reject if { path /a }", name="fe")), {}, diags)
    assert [d.severity for d in diags] == [WARNING]


def _example_configs() -> list[str]:
    import glob
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    return sorted(glob.glob(str(repo / "conf" / "*.cfg"))) + sorted(
        glob.glob("/usr/share/doc/haproxy/examples/*.cfg")
    )


@pytest.mark.parametrize("path", _example_configs())
def test_shipped_and_haproxy_example_configs_compile(path):
    from minilb.config.load import load_config

    try:
        conf, _ = load_config([path], localpeer="lb1")
    except ConfigError as e:  # haproxy itself rejects some examples (wurfl: a module it lacks)
        pytest.skip(f"the config layer rejects it: {e.alerts[0]}")
    assert [str(d) for d in check_rules(conf) if d.severity == ALERT] == []


def test_use_backend_in_tcp_mode_takes_the_session():
    fe = proxy(
        "use_backend inside if { src 10.0.0.0/8 }\nuse_backend web if { path /a }", name="fe", kind="frontend"
    )
    names = ("inside", "web")
    rules = compile_rules(config(fe, *(proxy("", name=n, kind="backend") for n in names)), {})["fe"]
    assert rules.select_backend(session(src="10.1.1.1")) == "inside"
    assert rules.select_backend(session(src="8.8.8.8")) is None  # HTTP fetches find nothing without a Txn


def test_nbsrv_reads_the_backend_runtimes_at_request_time():
    from types import SimpleNamespace

    fe = proxy(
        "acl dead nbsrv(app) lt 1\nuse_backend sorry if dead\nuse_backend app",
        name="fe",
        kind="frontend",
    )
    backends: dict = {}
    rules = compile_rules(
        config(fe, proxy("", name="app", kind="backend"), proxy("", name="sorry", kind="backend")),
        {},
        backends=backends,
    )["fe"]
    servers = [SimpleNamespace(up=True), SimpleNamespace(up=False)]
    backends["app"] = SimpleNamespace(servers=servers)  # filled after compiling, as the worker does
    assert rules.select_backend(txn()) == "app"
    servers[0].up = False
    assert rules.select_backend(txn()) == "sorry"
    diags = check_rules(
        config(proxy("acl dead nbsrv(appp) lt 1", name="fe"), proxy("", name="app", kind="backend"))
    )
    assert (
        "unable to find backend 'appp' in ACL expression 'nbsrv(appp)' (did you mean 'app'?)"
        in diags[0].message
    )


def test_connection_rules_need_a_frontend():
    be = proxy("tcp-request connection reject if { src 1.2.3.4 }", name="be", kind="backend")
    # haproxy 2.6.12's words
    assert [d.message for d in check_rules(config(be))] == [
        "tcp-request connection is not allowed because backend be is not a frontend"
    ]


_REGISTRATIONS = re.compile(
    r"\b(register_fetch|register_converter|register_action|register_acl_keyword|register_rule_keyword)\("
)


def test_one_feature_list_names_every_module_that_registers_keywords():
    """Check mode and a worker compile through the same `load_features`: every module
    outside minilb.rules that registers a rule keyword must be on its one list."""
    import minilb
    from minilb.rules import features

    root = Path(minilb.__file__).parent
    registering = set()
    for path in root.rglob("*.py"):
        relative = path.relative_to(root.parent)
        if relative.parts[1] == "rules":
            continue
        if _REGISTRATIONS.search(path.read_text()):
            registering.add(".".join(relative.with_suffix("").parts))
    assert registering and registering == set(features.FEATURE_MODULES)
    features.load_features()
    assert all(name in sys.modules for name in features.FEATURE_MODULES)
    import minilb.check

    assert not hasattr(minilb.check, "FEATURE_MODULES")  # no second list to drift
