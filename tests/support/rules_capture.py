"""Captures what real HAProxy 2.6 answers to rule-generated replies (deny, return,
redirect, tarpit, header edits), for the rules tests to compare against.

Run by hand: ``python -m tests.support.rules_capture`` (needs ``haproxy`` on PATH);
it rewrites ``tests/data/rules_haproxy_replies.json``: request name -> response bytes
(latin-1 text).  Each case is a route of one frontend; the config is `CONFIG` below,
also used by the tests to build the same rules for minilb.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "rules_haproxy_replies.json"

#: (name, request bytes); every request goes to the "fe" frontend of CONFIG
REQUESTS = [
    ("deny", b"GET /deny HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("deny429", b"GET /deny429 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("deny_string", b"GET /denystr HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("deny400", b"GET /deny400 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("deny_hdr", b"GET /denyhdr HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("deny_http10", b"GET /deny HTTP/1.0\r\n\r\n"),
    ("deny_http10_keepalive", b"GET /deny HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    ("return_http10", b"GET /ret HTTP/1.0\r\n\r\n"),
    ("return_head", b"HEAD /ret HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("return_string", b"GET /ret HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("return_empty", b"GET /retnone HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("return_status_only", b"GET /ret404 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("return_lf", b"GET /retlf?q=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("return_errorfile", b"GET /reterrf HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("return_default_errorfiles", b"GET /retdef HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_location", b"GET /redir HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_prefix", b"GET /redirp/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_prefix_dropq", b"GET /redirdq/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_prefix_slash", b"GET /redirsl/x HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_scheme", b"GET /redirs?z=2 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    ("redirect_scheme_nohost", b"GET /redirs HTTP/1.0\r\n\r\n"),
    ("redirect_cookie", b"GET /redirc HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_clear_cookie", b"GET /redircc HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_307", b"GET /redir307 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_303", b"GET /redir303 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_308", b"GET /redir308 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_legacy", b"GET /legacy HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("redirect_location_lf", b"GET /redirlf?a=b HTTP/1.1\r\nHost: h1\r\n\r\n"),
    ("tarpit", b"GET /tarpit HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("set_header_missing_sample", b"GET /hdrmiss HTTP/1.1\r\nHost: a\r\n\r\n"),
    (
        "header_edits",
        b"GET /edits HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-A: 2\r\nX-B: foo, bar\r\nX-C: c\r\n\r\n",
    ),
    ("set_path_query", b"GET /setpq?old=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("set_uri", b"GET /seturi HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("vars", b"GET /vars HTTP/1.1\r\nHost: a\r\nUser-Agent: Curl/7\r\n\r\n"),
    (
        "converters",
        b"GET /conv/a/b/c?x=42&y=abc HTTP/1.1\r\nHost: WWW.Example.COM:8080\r\nCookie: s=1; t=2\r\n\r\n",
    ),
    ("response_rules", b"GET /resp HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("response_deny", b"GET /respdeny HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("after_response", b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n"),
]

CONFIG = """\
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 5s
  timeout tarpit 10ms
frontend fe
  bind 127.0.0.1:{port}
  http-request deny if {{ path /deny }}
  http-request deny deny_status 429 if {{ path /deny429 }}
  http-request deny deny_status 403 content-type text/plain string "nope" if {{ path /denystr }}
  http-request deny deny_status 400 if {{ path /deny400 }}
  http-request deny deny_status 403 hdr X-Why "rule %[path]" if {{ path /denyhdr }}
  http-request return status 200 content-type text/plain string "hello" if {{ path /ret }}
  http-request return if {{ path /retnone }}
  http-request return status 404 if {{ path /ret404 }}
  http-request return status 201 content-type "text/plain" lf-string "p=%[path] q=%[query]" hdr X-A "v %[method]" hdr X-B b if {{ path /retlf }}
  http-request return status 503 errorfile {errorfile} if {{ path /reterrf }}
  http-request return status 503 default-errorfiles if {{ path /retdef }}
  http-request redirect location /new code 301 if {{ path /redir }}
  http-request redirect prefix /p if {{ path_beg /redirp }}
  http-request redirect prefix /p drop-query if {{ path_beg /redirdq }}
  http-request redirect prefix /p append-slash if {{ path_beg /redirsl }}
  http-request redirect scheme https if {{ path /redirs }}
  http-request redirect location /z set-cookie FOO=bar if {{ path /redirc }}
  http-request redirect location /z clear-cookie FOO= if {{ path /redircc }}
  http-request redirect location /t code 307 if {{ path /redir307 }}
  http-request redirect location /t code 303 if {{ path /redir303 }}
  http-request redirect location /t code 308 if {{ path /redir308 }}
  http-request redirect location "/x?h=%[req.hdr(host)]&p=%[path]" if {{ path /redirlf }}
  http-request tarpit if {{ path /tarpit }}
  http-request set-header X-T "v=%[req.hdr(nonexistent)]" if {{ path /hdrmiss }}
  http-request return status 200 content-type text/plain lf-string "[%[req.hdr(x-t)]]" if {{ path /hdrmiss }}
  http-request add-header X-D "d1" if {{ path /edits }}
  http-request set-header X-C "new %[req.hdr_cnt(x-a)]" if {{ path /edits }}
  http-request del-header X-A if {{ path /edits }}
  http-request replace-header X-B '^(.*)$' '<\\1>' if {{ path /edits }}
  http-request replace-value X-D "^d(.)" "e\\1" if {{ path /edits }}
  http-request return status 200 content-type text/plain lf-string "a=[%[req.fhdr(x-a)]] b=[%[req.fhdr(x-b)]] c=[%[req.fhdr(x-c)]] d=[%[req.fhdr(x-d)]] n=%[req.hdr_cnt]" if {{ path /edits }}
  http-request set-path /other if {{ path /setpq }}
  http-request set-query "n=%[str(2)]" if {{ path /other }}
  http-request return status 200 content-type text/plain lf-string "u=%[url] p=%[path] q=%[query]" if {{ path /other }}
  http-request set-uri /u2?k=v if {{ path /seturi }}
  http-request return status 200 content-type text/plain lf-string "u=%[url] p=%[path] q=%[query]" if {{ path /u2 }}
  http-request set-var(txn.ua) req.hdr(user-agent),lower if {{ path /vars }}
  http-request set-var(txn.n) int(5),add(3),mul(2) if {{ path /vars }}
  http-request set-var(txn.gone) str(x) if {{ path /vars }}
  http-request unset-var(txn.gone) if {{ path /vars }}
  http-request return status 200 content-type text/plain lf-string "ua=%[var(txn.ua)] n=%[var(txn.n)] gone=[%[var(txn.gone)]] d=%[var(txn.zz,dflt)]" if {{ path /vars }}
  http-request return status 200 content-type text/plain lf-string "h=%[req.hdr(host),lower,field(1,:)] f=%[path,field(3,/)] w=%[path,word(2,/)] p=%[url_param(x),add(1)] y=%[url_param(y),upper] c=%[req.cook(t)] b=%[base] l=%[path,length] x=%[str(AB),hex] 6=%[str(hello),base64] r=%[path,regsub(/,_,g)] by=%[str(abcdef),bytes(1,3)] v=%[req.ver] m=%[method] s=%[src] d=%[int(7),div(2)] su=%[int(3),sub(10)]" if {{ path_beg /conv }}
  http-request set-var(txn.path) path
  redirect prefix /leg code 301 if {{ path /legacy }}
  default_backend be
  http-response set-header X-R1 "r1 %[status]" if {{ var(txn.path) -m str /resp }}
  http-response add-header X-R2 r2 if {{ var(txn.path) -m str /resp }}
  http-response del-header X-Origin if {{ var(txn.path) -m str /resp }}
  http-response set-status 202 reason "Fine" if {{ var(txn.path) -m str /resp }}
  http-response deny if {{ var(txn.path) -m str /respdeny }}
  http-after-response set-header X-After "a %[status]" if {{ var(txn.path) -m str /after }}
  http-after-response set-status 299 if {{ var(txn.path) -m str /after }}
backend be
  server origin 127.0.0.1:{origin_port}
frontend origin
  bind 127.0.0.1:{origin_port}
  http-request return status 200 content-type text/plain string "origin" hdr X-Origin yes
"""


def capture() -> dict[str, str]:
    from tests.support.procs import free_port
    from tests.support.rules import exchange, running_haproxy

    port, origin_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        errorfile = os.path.join(tmp, "503.http")
        with open(errorfile, "wb") as f:
            f.write(b"HTTP/1.1 503 Busy\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nbusy\n")
        cfg = os.path.join(tmp, "capture.cfg")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(port=port, origin_port=origin_port, errorfile=errorfile))
        with running_haproxy("haproxy", cfg, port):
            return {name: exchange(port, req).decode("latin-1") for name, req in REQUESTS}


if __name__ == "__main__":
    result = capture()
    DATA.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    for k, v in result.items():
        print("=====", k)
        print(v)
