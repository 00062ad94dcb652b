"""Replays the requests of tests/support/rules_capture.py through minilb's compiled
rules and compares the answers with what haproxy 2.6.12 sent (recorded in
tests/data/rules_haproxy_replies.json) byte for byte."""

from __future__ import annotations

import pytest

from minilb.config.model import ErrorFile, Timeouts
from minilb.errors import SourceLocation
from minilb.rules.compile import compile_rules
from minilb.rules.replies import wire_bytes
from tests.support import rules_capture
from tests.support.rules import config, haproxy_replies, proxy, session, txn

ERRORFILE_BYTES = b"HTTP/1.1 503 Busy\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nbusy\n"


@pytest.fixture(scope="module")
def fe_rules(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("capture")
    errorfile = tmp / "503.http"
    errorfile.write_bytes(ERRORFILE_BYTES)
    text = rules_capture.CONFIG.format(port=1, origin_port=2, errorfile=errorfile)
    lines = text.splitlines()
    start = lines.index("frontend fe") + 1
    end = lines.index("backend be")
    body = "\n".join(
        line for line in lines[start:end] if not line.strip().startswith(("bind", "default_backend"))
    )
    fe = proxy(
        body, name="fe", kind="frontend", start_line=start + 1, timeouts=Timeouts(connect=5000, tarpit=10)
    )
    be = proxy("", name="be", kind="backend")
    return compile_rules(config(fe, be), {})["fe"]


REQUESTS = dict(rules_capture.REQUESTS)
DECIDED_BY_RULES = [
    name for name in REQUESTS if name not in ("response_rules", "response_deny", "after_response")
]


@pytest.mark.parametrize("name", DECIDED_BY_RULES)
def test_request_rules_answer_like_haproxy(fe_rules, name):
    expected = haproxy_replies()[name]
    # haproxy saw the client as 127.0.0.1 (the converters case prints %[src])
    reply = fe_rules.http_request(txn(REQUESTS[name], session(src="127.0.0.1")))
    assert reply is not None
    request = REQUESTS[name]
    http10 = b"HTTP/1.0" in request.split(b"\r\n")[0]
    keep_alive = b"connection: keep-alive" in request.lower()
    close = (http10 and not keep_alive) or reply.status in (400, 408)
    head = request.startswith(b"HEAD ")
    assert wire_bytes(reply, close=close, version="1.0" if http10 else "1.1", head=head) == expected


def test_tarpit_waits_timeout_tarpit(fe_rules):
    reply = fe_rules.http_request(txn(REQUESTS["tarpit"]))
    assert reply.delay_ms == 10 and reply.status == 500


def test_legacy_redirect_keyword_runs_after_http_request_rules():
    # HAProxy evaluates `redirect` rules after every `http-request` rule of the proxy,
    # whatever their order in the file.
    fe = proxy(
        """
        redirect location /r
        http-request deny if { path /d }
        """
    )
    rules = compile_rules(config(fe), {})["fe"]
    assert rules.http_request(txn(b"GET /d HTTP/1.1\r\n\r\n")).status == 403
    assert rules.http_request(txn(b"GET /x HTTP/1.1\r\n\r\n")).status == 302


def _origin_response(t):
    t.status = 200
    t.resp_headers = [[b"x-origin", b"yes"], [b"content-length", b"6"], [b"content-type", b"text/plain"]]


def _head(status, reason, headers):
    return b"HTTP/1.1 %d %s\r\n" % (status, reason.encode()) + b"".join(
        k + b": " + v + b"\r\n" for k, v in headers
    )


def test_http_response_rules_edit_like_haproxy(fe_rules):
    from minilb.rules.replies import reason_for

    t = txn(REQUESTS["response_rules"])
    assert fe_rules.http_request(t) is None
    _origin_response(t)
    assert fe_rules.http_response(t) is None
    expected = haproxy_replies()["response_rules"].split(b"\r\n\r\n")[0] + b"\r\n"
    assert _head(t.status, t.resp_reason or reason_for(t.status), t.resp_headers) == expected


def test_http_response_deny_gives_502_page(fe_rules):
    t = txn(REQUESTS["response_deny"])
    fe_rules.http_request(t)
    _origin_response(t)
    assert wire_bytes(fe_rules.http_response(t)) == haproxy_replies()["response_deny"]


def test_http_after_response_like_haproxy(fe_rules):
    from minilb.rules.replies import reason_for

    t = txn(REQUESTS["after_response"])
    fe_rules.http_request(t)
    _origin_response(t)
    fe_rules.http_response(t)
    fe_rules.http_after_response(t)
    expected = haproxy_replies()["after_response"].split(b"\r\n\r\n")[0] + b"\r\n"
    assert _head(t.status, t.resp_reason or reason_for(t.status), t.resp_headers) == expected


def test_errorfile_of_proxy_replaces_deny_page():
    page = b"HTTP/1.1 403 Nope\r\ncontent-length: 0\r\n\r\n"
    fe = proxy(
        "http-request deny",
        errorfiles=(ErrorFile(SourceLocation("t.cfg", 1), 403, "/x", page),),
    )
    rules = compile_rules(config(fe), {})["fe"]
    assert rules.http_request(txn()).raw == page
