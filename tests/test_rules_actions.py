"""Each action's effect on a Txn (headers edited in place, request line rewritten,
variables, verdicts) and the registration API feature modules use."""

from __future__ import annotations

import ipaddress

import pytest

from minilb.errors import ALERT, WARNING
from minilb.rules import actions as A
from minilb.rules.compile import check_rules, compile_rules
from minilb.rules.replies import wire_bytes
from tests.support.rules import config, proxy, session, txn

REQ = b"GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B: foo, bar\r\nX-Keep: k\r\n\r\n"


def run(lines: str, request: bytes = REQ, **sess):
    rules = compile_rules(config(proxy(lines, name="fe")), {})["fe"]
    t = txn(request, session(**sess))
    return rules, t, rules.http_request(t)


def test_set_header_replaces_every_occurrence_and_sees_the_old_value():
    _, t, reply = run('http-request set-header X-A "%[req.hdr(x-a)]+new"')
    assert reply is None
    assert t.headers == [
        [b"Host", b"h"],
        [b"X-B", b"foo, bar"],
        [b"X-Keep", b"k"],
        [b"x-a", b"2+new"],
    ]


def test_add_header_appends():
    _, t, _ = run("http-request add-header X-A 3\nhttp-request add-header X-New %[src]", src="1.2.3.4")
    assert t.headers[-2:] == [[b"x-a", b"3"], [b"x-new", b"1.2.3.4"]]
    assert [v for k, v in t.headers if k.lower() == b"x-a"] == [b"1", b"2", b"3"]


@pytest.mark.parametrize(
    "line, left",
    [
        ("http-request del-header x-a", [b"Host", b"X-B", b"X-Keep"]),
        ("http-request del-header X-NONE", [b"Host", b"X-A", b"x-a", b"X-B", b"X-Keep"]),
        ("http-request del-header x- -m beg", [b"Host"]),
        ("http-request del-header -b -m end", [b"Host", b"X-A", b"x-a", b"X-Keep"]),
        ("http-request del-header ee -m sub", [b"Host", b"X-A", b"x-a", b"X-B"]),
        # haproxy 2.6.12 runs the regex on lower-cased names: ^X-[AB]$ deletes nothing
        ("http-request del-header ^X-[AB]$ -m reg", [b"Host", b"X-A", b"x-a", b"X-B", b"X-Keep"]),
        ("http-request del-header ^x-[ab]$ -m reg", [b"Host", b"X-Keep"]),
    ],
)
def test_del_header(line, left):
    _, t, _ = run(line)
    assert [k for k, _ in t.headers] == left


def test_replace_header_rewrites_whole_lines_and_replace_value_each_value():
    _, t, _ = run("http-request replace-header X-B ^(.*)$ <\\1>")
    assert [b"X-B", b"<foo, bar>"] in t.headers
    _, t, _ = run("http-request replace-value X-B ^(f|b)(.*)$ \\2\\1")
    assert [b"X-B", b"oof,arb"] in t.headers
    # observed with haproxy 2.6.12: "foo , bar ,baz" with ^b(.*)$ -> B\1 gives "foo ,Bar,Baz"
    _, t, _ = run(
        "http-request replace-value X-C ^b(.*)$ B\\1", b"GET / HTTP/1.1\r\nX-C: foo , bar ,baz\r\n\r\n"
    )
    assert t.headers == [[b"X-C", b"foo ,Bar,Baz"]]
    # the whole value is replaced by the expansion (haproxy's exp_replace): "o" -> "0" gives "0"
    _, t, _ = run("http-request replace-header X-Keep k %[str(v)]-\\0")
    assert [b"X-Keep", b"v-k"] in t.headers


@pytest.mark.parametrize(
    "line, uri, path, query",
    [
        ("http-request set-path /new", b"/new?x=1", "/new", "x=1"),
        ("http-request set-path %[path]/more", b"/a/b/more?x=1", "/a/b/more", "x=1"),
        ("http-request set-query y=%[url_param(x)]", b"/a/b?y=1", "/a/b", "y=1"),
        ("http-request set-query %[str()]", b"/a/b?", "/a/b", ""),
        ("http-request set-uri /u?k=v", b"/u?k=v", "/u", "k=v"),
        ("http-request set-uri /u", b"/u", "/u", None),
        ("http-request set-pathq /p?q=2", b"/p?q=2", "/p", "q=2"),
        ("http-request replace-path ^/a/(.*) /z/\\1", b"/z/b?x=1", "/z/b", "x=1"),
        ("http-request replace-path ^/nomatch /z", b"/a/b?x=1", "/a/b", "x=1"),
        ("http-request replace-uri ^/a/b\\?(.*) /c?\\1&m=1", b"/c?x=1&m=1", "/c", "x=1&m=1"),
    ],
)
def test_request_line_rewrites(line, uri, path, query):
    _, t, _ = run(line)
    assert (t.uri, t.path, t.query) == (uri, path, query)


def test_set_path_keeps_an_absolute_uris_authority():
    _, t, _ = run("http-request set-path /new", b"GET http://example.com/old?q=1 HTTP/1.1\r\n\r\n")
    assert (t.uri, t.path, t.query) == (b"http://example.com/new?q=1", "/new", "q=1")


def test_set_method():
    _, t, _ = run("http-request set-method POST")
    assert t.method == "POST"


def test_variables():
    rules, t, _ = run(
        """
        http-request set-var(txn.host) req.hdr(host),upper
        http-request set-var(sess.seen) int(1)
        http-request set-var(txn.first) str(a)
        http-request set-var(txn.first,ifnotexists) str(b)
        http-request set-var-fmt(txn.fmt) "%[var(txn.host)]-%[path]"
        http-request set-var(txn.gone) str(x)
        http-request unset-var(txn.gone)
        http-request set-var(txn.missing) req.hdr(none)
        """
    )
    assert t.vars == {"txn.host": "H", "txn.first": "a", "txn.fmt": "H-/a/b"}
    assert t.sess.vars == {"sess.seen": 1}


def test_allow_stops_the_rule_set():
    _, t, reply = run("http-request allow if { path_beg /a }\nhttp-request deny")
    assert reply is None
    _, t, reply = run("http-request allow if { path_beg /z }\nhttp-request deny")
    assert reply.status == 403


def test_first_final_verdict_wins_and_later_rules_do_not_run():
    _, t, reply = run(
        """
        http-request add-header X-Before 1
        http-request return status 200 content-type text/plain string one if { path_beg /a }
        http-request add-header X-After 1
        http-request deny
        """
    )
    assert reply.body == b"one"
    assert [b"x-before", b"1"] in t.headers and not any(k == b"x-after" for k, _ in t.headers)


def test_reject_and_silent_drop_close_without_answer():
    for action in ("reject", "silent-drop"):
        _, _, reply = run(f"http-request {action}")
        assert reply.raw == b"" and reply.close


def test_tarpit_delay_and_page():
    rules = compile_rules(config(proxy("http-request tarpit deny_status 429", name="fe")), {})["fe"]
    reply = rules.http_request(txn())
    assert (reply.status, reply.delay_ms) == (429, 10)  # the helper sets timeout tarpit 10ms
    assert wire_bytes(reply).startswith(b"HTTP/1.1 429 Too Many Requests\r\n")


def test_return_with_dynamic_body_and_headers():
    _, _, reply = run(
        'http-request return status 418 content-type "text/plain" lf-string "hi %[req.hdr(host)]" hdr X-Id %[src]',
        src="9.9.9.9",
    )
    assert wire_bytes(reply) == (
        b"HTTP/1.1 418 I'm a teapot\r\nx-id: 9.9.9.9\r\ncontent-length: 4\r\ncontent-type: text/plain\r\n\r\nhi h"
    )


def test_return_file(tmp_path):
    f = tmp_path / "body.json"
    f.write_bytes(b'{"ok": true}\n')
    _, _, reply = run(f"http-request return content-type application/json file {f}")
    assert reply.body == b'{"ok": true}\n' and (b"content-length", b"13") in reply.headers


def test_redirect_ignore_empty_and_dynamic_prefix():
    rules, t, reply = run('http-request redirect location "%[req.hdr(x-to)]" ignore-empty\nhttp-request deny')
    assert reply.status == 403  # empty location: the redirect is skipped
    t = txn(b"GET / HTTP/1.1\r\nX-To: /there\r\n\r\n")
    assert rules.http_request(t).headers[1] == (b"location", b"/there")
    _, _, reply = run("http-request redirect prefix / code 308")  # prefix "/" keeps just the path
    assert reply.headers == ((b"content-length", b"0"), (b"location", b"/a/b?x=1"))


def test_http_response_and_after_response_rules():
    rules = compile_rules(
        config(
            proxy(
                """
                http-response set-header Cache-Control no-store if { status 200 }
                http-response del-header Server
                http-response replace-value Vary ^(.*)$ \\1-x
                http-response set-status 203 reason Changed if { res.hdr(x-flag) -m found }
                http-after-response add-header X-After %[status]
                """,
                name="fe",
            )
        ),
        {},
    )["fe"]
    t = txn()
    t.status = 200
    t.resp_headers = [[b"Server", b"x"], [b"Vary", b"a, b"], [b"X-Flag", b"1"]]
    assert rules.has_http_response and rules.has_http_after_response
    assert rules.http_response(t) is None
    assert (t.status, t.resp_reason) == (203, "Changed")
    assert t.resp_headers == [[b"Vary", b"a-x,b-x"], [b"X-Flag", b"1"], [b"cache-control", b"no-store"]]
    rules.http_after_response(t)
    assert t.resp_headers[-1] == [b"x-after", b"203"]


def test_frontend_then_backend_rules():
    fe = proxy("http-request set-header X-Fe 1\nuse_backend be", name="fe", kind="frontend")
    be = proxy("http-request deny if { req.hdr(x-fe) 1 }", name="be", kind="backend")
    rules = compile_rules(config(fe, be), {})
    t = txn()
    assert rules["fe"].http_request(t) is None
    assert rules["fe"].select_backend(t) == "be"
    assert rules["be"].http_request(t).status == 403


def test_tcp_accept_stops_and_content_rules_without_txn():
    fe = proxy(
        """
        tcp-request content set-var(sess.tagged) int(1)
        tcp-request content accept if { var(sess.tagged) -m int 1 }
        tcp-request content reject
        """,
        name="fe",
    )
    rules = compile_rules(config(fe), {})["fe"]
    sess = session()
    assert rules.tcp_content(sess) is True
    assert sess.vars == {"sess.tagged": 1}


def test_unsupported_but_known_actions_warn_and_do_nothing():
    diags = check_rules(config(proxy("http-request set-log-level silent", name="fe")))
    assert [(d.severity, d.message) for d in diags] == [
        (WARNING, "'http-request set-log-level' is not supported by minilb and is ignored.")
    ]


def test_feature_modules_register_actions_with_parenthesised_args():
    calls = []

    def parse(spec, ctx):
        expr = ctx.parse_expr(spec.args[0])
        idx = int(spec.paren_args[0])

        def act(sess, txn):
            calls.append((idx, expr.eval(sess, txn)))

        return act, 1

    A.register_action((A.HTTP_REQUEST, A.TCP_CONNECTION), "test-note", parse, paren=True)
    rules = compile_rules(
        config(
            proxy(
                "http-request test-note(2) path if { path_beg /a }\ntcp-request connection test-note(0) src",
                name="fe",
            )
        ),
        {},
    )["fe"]
    t = txn()
    rules.http_request(txn(REQ))
    rules.tcp_connection(t.sess)
    assert calls == [(2, "/a/b"), (0, ipaddress.ip_address("10.0.0.1"))]
    diags = check_rules(config(proxy("http-request test-note(1) path extra", name="fe")))
    assert (
        diags[0].message
        == "'http-request test-note(1)' expects either 'if' or 'unless' followed by a condition but found 'extra'."
    )
    diags = check_rules(config(proxy("http-request test-note path", name="fe")))
    assert "but got 'test-note'" in diags[0].message


def test_set_var_conditions():
    _, t, _ = run(
        """
        http-request set-var(txn.a,ifnotexists) int(1)
        http-request set-var(txn.a,ifnotexists) int(2)
        http-request set-var(txn.b,ifexists) int(1)
        http-request set-var(txn.c) int(10)
        http-request set-var(txn.c,ifgt) int(4)
        http-request set-var(txn.c,ifgt) int(7)
        http-request set-var(txn.d) int(1)
        http-request set-var(txn.d,iflt) int(9)
        http-request set-var(txn.e,ifnotempty) str()
        http-request set-var(txn.f,ifempty) str()
        """
    )
    # ifgt: set when the variable is greater than the input (10 > 4 -> 4; 4 > 7 is false)
    assert t.vars == {"txn.a": 1, "txn.c": 4, "txn.d": 9, "txn.f": ""}
    diags = check_rules(config(proxy("http-request set-var(txn.a,ifbogus) int(1)", name="fe")))
    assert diags[0].message.endswith("'ifbogus' is not a valid condition for a variable.")


def test_haproxy_actions_minilb_lacks_are_clear_errors():
    diags = check_rules(
        config(proxy("http-request auth realm x\ntcp-request connection expect-proxy layer4", name="fe"))
    )
    assert [d.message for d in diags if d.severity == ALERT] == [
        "error detected in proxy 'fe' while parsing 'http-request auth' rule : 'http-request auth' is a HAProxy 2.6 "
        "action that minilb does not implement; ignoring it would change what the proxy does.",
        "error detected in proxy 'fe' while parsing 'tcp-request connection expect-proxy' rule : 'tcp-request "
        "connection expect-proxy' is a HAProxy 2.6 action that minilb does not implement; ignoring it would change "
        "what the proxy does.",
    ]


@pytest.mark.parametrize(
    "line, status, kind",
    [
        ("http-request deny", 403, "deny"),
        ("http-request deny deny_status 429", 429, "deny"),
        ("http-request deny deny_status 429 content-type text/plain string no", 429, "deny"),
        ("http-request tarpit", 500, "tarpit"),
        ("http-request return status 404", 404, "return"),
        ("http-request return status 200 content-type text/plain lf-string %[src]", 200, "return"),
        ("http-request return status 503 default-errorfiles", 503, "return"),
        ("http-request redirect location /x", 302, "redirect"),
        ("http-request redirect prefix %[req.hdr(host)] code 301", 301, "redirect"),
        ("http-request reject", 403, "reject"),
    ],
)
def test_reply_kind_says_which_action_built_it(line, status, kind):
    """The adapter counts http_err for a deny or a tarpit, never for a return."""
    _, _, reply = run(line, src="1.2.3.4")
    assert (reply.status, reply.kind) == (status, kind)


def test_http_response_deny_reply_kind():
    rules, t, _ = run("http-response deny")
    t.status = 200
    reply = rules.http_response(t)
    assert (reply.status, reply.kind) == (502, "deny")
