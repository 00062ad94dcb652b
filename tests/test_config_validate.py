"""The second pass reports every problem of a configuration in one run, with
haproxy's wording (haproxy -c 2.6.12 output quoted next to each expectation)."""

from __future__ import annotations

from tests.support.config import DEFAULTS, load


def test_all_problems_in_one_run(tmp_path):
    _, lines = load(
        tmp_path,
        """\
        global
            frobnicate 3
        defaults
            mode http
            timeout connect 5s
            timeout client 5s
            timeout server 5s
        frontend fe
            bind :8080
            defualt_backend be
            default_backend bee
            use_backend nope if { path_beg /x }
            use_backend be
        frontend fe
            bind :8081
        frontend nobind
            default_backend be
        backend be
            mode tcp
            server s1 127.0.0.1:80
            server s1 127.0.0.1:81
        backend be2
            stick-table type ip size 1m store http_req_rate(10s),gpc0 peers nopeers
            option foobar
            server s2 1.2.3.4:99999
            server s3 1.2.3.4:80 ssl
            tcp-request content track-sc0 src table nosuch
        userlist u
            user a insecure-password b
        """,
    )
    assert lines == [
        # haproxy: parsing [a.cfg:3] : unknown keyword 'frobnicate' in 'global' section
        "ALERT parsing [t.cfg:2] : unknown keyword 'frobnicate' in 'global' section",
        # haproxy: ... unknown keyword 'defualt_backend' in 'frontend' section; did you mean 'default_backend' maybe ?
        "ALERT parsing [t.cfg:10] : unknown keyword 'defualt_backend' in 'frontend' section; "
        "did you mean 'default_backend' maybe ?",
        # haproxy: backend 'be', another server named 's1' was already defined at line 18, please use distinct names.
        "ALERT parsing [t.cfg:21] : backend 'be', another server named 's1' was already defined at line 20, "
        "please use distinct names.",
        # haproxy: parsing [a.cfg:24] : unknown option 'foobar'.
        "ALERT parsing [t.cfg:24] : unknown option 'foobar'.",
        # haproxy: [a.cfg:25] : 'server be2/s2' : invalid port '99999'
        "ALERT parsing [t.cfg:25] : 'server be2/s2' : invalid port '99999'",
        "WARNING parsing [t.cfg:28] : 'userlist' section is not supported by minilb and is ignored.",
        # haproxy: Parsing [a.cfg:14]: frontend 'fe' has the same name as frontend 'fe' declared at a.cfg:9.
        "ALERT parsing [t.cfg:14] : frontend 'fe' has the same name as frontend 'fe' declared at t.cfg:8.",
        # haproxy: Proxy 'fe': unable to find required default_backend: 'bee'.
        "ALERT parsing [t.cfg:11] : Proxy 'fe': unable to find required default_backend: 'bee'. Did you mean 'be' ?",
        # haproxy: Proxy 'fe': unable to find required use_backend: 'nope'.
        "ALERT parsing [t.cfg:12] : Proxy 'fe': unable to find required use_backend: 'nope'.",
        # haproxy: http frontend 'fe' (b.cfg:8) tries to use incompatible tcp backend 'be' (b.cfg:16) in a
        # 'use_backend' rule (see 'mode').
        "ALERT parsing [t.cfg:13] : http frontend 'fe' (t.cfg:8) tries to use incompatible tcp backend 'be' "
        "(t.cfg:18) in a 'use_backend' rule (see 'mode').",
        # haproxy: frontend 'nobind' has no 'bind' directive. Please declare it as a backend if this was intended.
        "WARNING parsing [t.cfg:16] : frontend 'nobind' has no 'bind' directive. "
        "Please declare it as a backend if this was intended.",
        # haproxy: http frontend 'nobind' (b.cfg:13) tries to use incompatible tcp backend 'be' (b.cfg:16) as its
        # default backend (see 'mode').
        "ALERT parsing [t.cfg:17] : http frontend 'nobind' (t.cfg:16) tries to use incompatible tcp backend 'be' "
        "(t.cfg:18) as its default backend (see 'mode').",
        # haproxy: Proxy 'be2': unable to find sync peers 'nopeers'.
        "ALERT parsing [t.cfg:23] : Proxy 'be2': unable to find sync peers 'nopeers'.",
        # haproxy: Proxy 'be2': unable to find table 'nosuch' referenced by track-sc0.
        "ALERT parsing [t.cfg:27] : Proxy 'be2': unable to find table 'nosuch' referenced by track-sc0.",
        # haproxy: verify is enabled by default but no CA file specified. ...
        "ALERT parsing [t.cfg:26] : verify is enabled by default but no CA file specified. If you're running on "
        "a LAN where you're certain to trust the server's certificate, please set an explicit 'verify none' "
        "statement on the 'server' line, or use 'ssl-server-verify none' in the global section to disable "
        "server-side verifications by default.",
    ]


def test_capabilities_and_legacy_keywords(tmp_path):
    _, lines = load(
        tmp_path,
        DEFAULTS
        + """\
        frontend fe
            bind :8080
            balance roundrobin
            server x 1.2.3.4:80
            option httpchk
            redispatch
            option http-tunnel
            reqadd X-Foo:\\ bar
            tcp-request frob
            timeout frob 3s
            stick-table type ip size 1k
            stick-table type ip size 1k
        backend be
            bind :8081
            contimeout 5s
            balance url_param
            option forceclose
            errorfile 503 /nonexistent
            errorfile 999 /etc/hostname
            server t 127.0.0.1:80 weight 300
            server u
            server s 127.0.0.1:80 frob 3
            compression algo gzip
        defaults
            acl foo path /x
        """,
    )
    assert lines == [
        # haproxy: 'balance' ignored because frontend 'fe' has no backend capability.
        "WARNING parsing [t.cfg:8] : 'balance' ignored because frontend 'fe' has no backend capability.",
        # haproxy: 'server' not allowed because frontend 'fe' has no backend capability.
        "ALERT parsing [t.cfg:9] : 'server' not allowed because frontend 'fe' has no backend capability.",
        # haproxy: 'httpchk' ignored because frontend 'fe' has no backend capability.
        "WARNING parsing [t.cfg:10] : 'httpchk' ignored because frontend 'fe' has no backend capability.",
        # haproxy: keyword 'redispatch' directive is not supported anymore since HAProxy 2.1. Use 'option redispatch'.
        "ALERT parsing [t.cfg:11] : keyword 'redispatch' directive is not supported anymore since HAProxy 2.1. "
        "Use 'option redispatch'.",
        # haproxy: option 'http-tunnel' is not supported any more since HAProxy 2.1, please just remove it, ...
        "ALERT parsing [t.cfg:12] : option 'http-tunnel' is not supported any more since HAProxy 2.1, "
        "please just remove it, it shouldn't be needed.",
        # haproxy: The 'reqadd' directive is not supported anymore since HAProxy 2.1. Use 'http-request add-header'
        "ALERT parsing [t.cfg:13] : The 'reqadd' directive is not supported anymore since HAProxy 2.1. "
        "Use 'http-request add-header' instead.",
        # haproxy: 'tcp-request' expects 'inspect-delay', 'connection', or 'content' in frontend 'fe' (got 'frob')
        "ALERT parsing [t.cfg:14] : 'tcp-request' expects 'inspect-delay', 'connection', or 'content' "
        "in frontend 'fe' (got 'frob')",
        "ALERT parsing [t.cfg:15] : 'timeout' expects 'check', 'client', 'client-fin', 'connect', "
        "'http-keep-alive', 'http-request', 'queue', 'server', 'server-fin', 'tarpit' or 'tunnel' in frontend "
        "'fe' (got 'frob').",
        # haproxy: stick-table name 'fe' conflicts with table declared in frontend 'fe' at h2.cfg:21.
        "ALERT parsing [t.cfg:17] : stick-table name 'fe' conflicts with table declared in frontend 'fe' at t.cfg:16.",
        # haproxy: 'bind' ignored because backend 'be' has no frontend capability.
        "WARNING parsing [t.cfg:19] : 'bind' ignored because backend 'be' has no frontend capability.",
        # haproxy: the 'contimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout connect'.
        "ALERT parsing [t.cfg:20] : the 'contimeout' directive is not supported anymore since HAProxy 2.1. "
        "Use 'timeout connect'.",
        # haproxy: balance url_param requires an URL parameter name.
        "ALERT parsing [t.cfg:21] : balance url_param requires an URL parameter name.",
        "ALERT parsing [t.cfg:22] : option 'forceclose' is not supported any more since HAProxy 2.0, please just "
        "remove it, or use 'option httpclose' if absolutely needed.",
        # haproxy: errorfile : error opening file '/nonexistent'.
        "ALERT parsing [t.cfg:23] : errorfile : error opening file '/nonexistent'.",
        # haproxy: errorfile : status code '999' not handled.
        "ALERT parsing [t.cfg:24] : errorfile : status code '999' not handled.",
        # haproxy: 'server be/t' : weight of server t is not within 0 and 256 (300)..
        "ALERT parsing [t.cfg:25] : 'server be/t' : weight of server t is not within 0 and 256 (300).",
        # haproxy: 'server' expects <name> and <addr>[:<port>] as arguments.
        "ALERT parsing [t.cfg:26] : 'server' expects <name> and <addr>[:<port>] as arguments.",
        # haproxy: 'server be/s' : unknown keyword 'frob'.
        "ALERT parsing [t.cfg:27] : 'server be/s' : unknown keyword 'frob'.",
        "WARNING parsing [t.cfg:28] : 'compression' is not supported by minilb and is ignored.",
        # haproxy: 'acl' not allowed in anonymous 'defaults' section.
        "ALERT parsing [t.cfg:30] : 'acl' not allowed in anonymous 'defaults' section.",
    ]


def test_unknown_from_and_dynamic_backend(tmp_path):
    _, lines = load(
        tmp_path,
        DEFAULTS + "frontend fe from nodefs\n  bind :1\n  use_backend be_%[req.hdr(host)]\n",
    )
    # haproxy: defaults section 'nodefs' not found for frontend 'fe'.
    assert lines == ["ALERT parsing [t.cfg:6] : defaults section 'nodefs' not found for frontend 'fe'."]


def test_valid_config_has_no_diagnostics(tmp_path):
    config, lines = load(
        tmp_path,
        DEFAULTS
        + "frontend fe\n  bind :1\n  default_backend be\nbackend be\n  server a 127.0.0.1:2 check\n"
        + "listen both\n  bind :3\n  server b 127.0.0.1:4\n",
    )
    assert lines == []
    assert [p.kind for p in config.frontends] == ["frontend", "listen"]
    assert [p.name for p in config.backends] == ["be", "both"]


def test_duplicates_and_custom_ids(tmp_path):
    _, lines = load(
        tmp_path,
        DEFAULTS
        + """\
        frontend a
            bind :1
        backend a
            server x 1.1.1.1:1 id 3
            server y 1.1.1.1:1 id 3
        listen a
            bind :2
        backend c
            id 5
        backend d
            id 5
        """,
    )
    assert lines == [
        # haproxy: [q.cfg:3] : 'server b/b' : 'id' : custom id 3 already used at q.cfg:2 ('server a').
        "ALERT parsing [t.cfg:10] : 'server a/y' : 'id' : custom id 3 already used at t.cfg:9 ('server x').",
        # haproxy: Parsing [q.cfg:5]: proxy 'a' has the same name as frontend 'a' declared at q.cfg:1.
        "ALERT parsing [t.cfg:11] : proxy 'a' has the same name as frontend 'a' declared at t.cfg:6.",
        # haproxy: parsing [q.cfg:4]: backend c reuses same custom id as backend b (declared at q.cfg:1).
        "ALERT parsing [t.cfg:15] : backend d reuses same custom id as backend c (declared at t.cfg:13).",
    ]


def test_more_haproxy_wordings(tmp_path):
    _, lines = load(
        tmp_path,
        """\
        global
            localpeer other
            master-cli :9999
            stats socket /tmp/x.sock level frob
            nbthread 0
        frontend f
            bind :1 frob
            timeout client 1s
            mode frob
            retries 3
            use_backend b foo
            log 127.0.0.1:514 frob
            log
        backend b
            timeout connect 1s
            timeout server 1s
            server t 1.1.1.1:1 rise 0
        """,
        localpeer="me",
    )
    assert lines == [
        # haproxy: 'localpeer' ignored since it is already set by using the '-L' command line argument.
        "WARNING parsing [t.cfg:2] : 'localpeer' ignored since it is already set by using the '-L' command line "
        "argument.",
        # haproxy: unknown keyword 'master-cli' in 'global' section; did you mean 'master-worker' maybe ?
        "ALERT parsing [t.cfg:3] : unknown keyword 'master-cli' in 'global' section; did you mean 'master-worker' "
        "maybe ?",
        # haproxy: 'stats socket' : ''level' only supports 'user', 'operator', and 'admin' (got 'frob')'
        "ALERT parsing [t.cfg:4] : 'stats socket' : 'level' only supports 'user', 'operator', and 'admin' "
        "(got 'frob')",
        # haproxy: 'nbthread' value must be between 1 and 64 (was 0)
        "ALERT parsing [t.cfg:5] : 'nbthread' value must be between 1 and 64 (was 0)",
        # haproxy: 'bind :1' in section 'frontend': unknown keyword 'frob'.
        "ALERT parsing [t.cfg:7] : 'bind :1' in section 'frontend' : unknown keyword 'frob'.",
        # haproxy: unknown proxy mode 'frob'.
        "ALERT parsing [t.cfg:9] : unknown proxy mode 'frob'.",
        # haproxy: 'retries' ignored because frontend 'f' has no backend capability.
        "WARNING parsing [t.cfg:10] : 'retries' ignored because frontend 'f' has no backend capability.",
        # haproxy: unexpected keyword 'foo' after switching rule, only 'if' and 'unless' are allowed.
        "ALERT parsing [t.cfg:11] : unexpected keyword 'foo' after switching rule, only 'if' and 'unless' are "
        "allowed.",
        # haproxy: log : unknown log facility 'frob'
        "ALERT parsing [t.cfg:12] : log : unknown log facility 'frob'",
        # haproxy: log : expects <address> and <facility> or global as arguments
        "ALERT parsing [t.cfg:13] : log : expects <address> and <facility> or global as arguments",
        # haproxy: 'server b/t' : 'rise' has to be > 0..
        "ALERT parsing [t.cfg:17] : 'server b/t' : 'rise' has to be > 0.",
        # the refused bind line leaves the frontend without a listener
        "WARNING parsing [t.cfg:6] : frontend 'f' has no 'bind' directive. Please declare it as a backend if this "
        "was intended.",
    ]


def test_keywords_not_allowed_in_defaults(tmp_path):
    _, lines = load(
        tmp_path,
        "defaults\n  bind :1\n  use_backend x\n  stick-table type ip size 1\n  server s 1.1.1.1:1\n  description foo\n",
    )
    # each as haproxy -c 2.6.12 printed it for the same lines
    assert lines == [
        "ALERT parsing [t.cfg:2] : 'bind' not allowed in 'defaults' section.",
        "ALERT parsing [t.cfg:3] : 'use_backend' not allowed in 'defaults' section.",
        "ALERT parsing [t.cfg:4] : 'stick-table' is not supported in 'defaults' section.",
        "ALERT parsing [t.cfg:5] : 'server' not allowed in 'defaults' section.",
        "ALERT parsing [t.cfg:6] : 'description' not allowed in 'defaults' section.",
    ]


def test_table_name_conflicts(tmp_path):
    _, lines = load(
        tmp_path,
        """\
        defaults
            timeout connect 1s
            timeout client 1s
            timeout server 1s
        frontend x
            bind :1
            stick-table type ip size 1k
        backend x
            stick-table type ip size 1k
        peers p
            peer me 127.0.0.1:2
            table x type ip size 1k
        """,
        localpeer="me",
    )
    assert lines == [
        # haproxy: parsing [tt.cfg:9] : stick-table name 'x' conflicts with table declared in frontend 'x' at tt.cfg:7.
        "ALERT parsing [t.cfg:9] : stick-table name 'x' conflicts with table declared in frontend 'x' at t.cfg:7.",
        # haproxy: parsing [tt.cfg:12] : stick-table name 'x' conflicts with table declared in frontend 'x' at ...
        "ALERT parsing [t.cfg:12] : stick-table name 'x' conflicts with table declared in frontend 'x' at t.cfg:7.",
    ]


def test_listen_sections_are_called_proxy(tmp_path):
    _, lines = load(
        tmp_path,
        DEFAULTS + "listen l\n  bind :1\n  use_backend b\nbackend b\n  mode tcp\nlisten nb\n  mode http\n",
    )
    assert lines == [
        # haproxy: http proxy 'l' (lm.cfg:6) tries to use incompatible tcp backend 'b' (lm.cfg:10) in a
        # 'use_backend' rule (see 'mode').
        "ALERT parsing [t.cfg:8] : http proxy 'l' (t.cfg:6) tries to use incompatible tcp backend 'b' (t.cfg:9) "
        "in a 'use_backend' rule (see 'mode').",
        # haproxy: proxy 'nb' has no 'bind' directive. Please declare it as a backend if this was intended.
        "WARNING parsing [t.cfg:11] : proxy 'nb' has no 'bind' directive. Please declare it as a backend if this "
        "was intended.",
    ]


def test_errorfile_must_be_an_http_response(tmp_path):
    (tmp_path / "bad.http").write_bytes(b"garbage\n")
    (tmp_path / "lf.http").write_bytes(b"HTTP/1.0 503 Busy\n\nbusy")
    (tmp_path / "cut.http").write_bytes(b"HTTP/1.0 503 Busy\r\nContent-Type: text/plain\r\n")
    config, lines = load(
        tmp_path,
        DEFAULTS
        + "frontend f\n  bind :1\n  errorfile 503 bad.http\n  errorfile 503 cut.http\n"
        "  errorfile 200 lf.http\n".replace("bad.http", str(tmp_path / "bad.http"))
        .replace("cut.http", str(tmp_path / "cut.http"))
        .replace("lf.http", str(tmp_path / "lf.http")),
    )
    assert lines == [
        # haproxy: errorfile : '/tmp/cfgt/bad.http': unable to parse headers (error offset: 0)
        "ALERT parsing [t.cfg:8] : errorfile : 'bad.http': unable to parse headers (error offset: 0)",
        "ALERT parsing [t.cfg:9] : errorfile : 'cut.http': unable to parse headers (error offset: 45)",
    ]


def test_http_check_expect_validation(tmp_path):
    _, lines = load(
        tmp_path,
        "backend b\n  timeout connect 1s\n  timeout server 1s\n  option httpchk\n"
        "  http-check expect status abc\n  http-check expect rstatus (\n  http-check expect foo bar\n"
        "  http-check expect status\n  http-check expect ! status 200-299,404\n",
    )
    assert lines == [
        # haproxy: 'http-check expect' : invalid character 'a' in the list of status codes.
        "ALERT parsing [t.cfg:5] : 'http-check expect' : invalid character 'a' in the list of status codes.",
        # haproxy: 'http-check expect' : regex '(' is invalid (error=missing closing parenthesis, erroffset=1).
        "ALERT parsing [t.cfg:6] : 'http-check expect' : regex '(' is invalid "
        "(error=missing ), unterminated subpattern).",
        # haproxy: 'http-check expect' : 'only supports min-recv, [!]string', ... but got 'foo' as argument..
        "ALERT parsing [t.cfg:7] : 'http-check expect' : 'only supports min-recv, [!]string', '[!]rstring', "
        "'[!]string-lf', '[!]status', '[!]rstatus', [!]hdr, [!]fhdr or comment but got 'foo' as argument.",
        # haproxy: 'http-check expect' : 'status' expects a <pattern> as argument.
        "ALERT parsing [t.cfg:8] : 'http-check expect' : 'status' expects a <pattern> as argument.",
    ]


def test_balance_and_forwardfor_arguments(tmp_path):
    _, lines = load(
        tmp_path,
        "defaults\n  mode http\n  timeout connect 1s\n  timeout server 1s\nbackend b\n"
        "  option forwardfor except foo\n  balance uri len x\n  balance uri frob\n"
        "  balance url_param u check_post x\n  balance hdr(host) frob\n  balance source frob\n",
    )
    # each as haproxy -c 2.6.12 printed it (url_param and source accept the extra words)
    assert lines == [
        "ALERT parsing [t.cfg:6] : 'option forwardfor except' expects <address>[/mask] as argument.",
        "ALERT parsing [t.cfg:7] : balance uri : 'len' expects a positive integer (got 'x').",
        "ALERT parsing [t.cfg:8] : balance uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' "
        "(got 'frob').",
        "ALERT parsing [t.cfg:10] : balance hdr(host) only accepts 'use_domain_only' modifier (got 'frob').",
    ]


def test_bad_bind_addresses(tmp_path):
    _, lines = load(tmp_path, "frontend f\n  timeout client 1s\n  bind :99999\n  bind 1.2.3.4\n  bind :80\n")
    assert lines == [
        # haproxy: parsing [ba.cfg:2] : 'bind' : invalid port '99999'
        "ALERT parsing [t.cfg:3] : 'bind' : invalid port '99999'",
        # haproxy: parsing [ba.cfg:3] : 'bind' : missing port specification in '1.2.3.4'
        "ALERT parsing [t.cfg:4] : 'bind' : missing port specification in '1.2.3.4'",
    ]


def test_time_argument_messages(tmp_path):
    _, lines = load(
        tmp_path,
        "global\n  hard-stop-after 1x\n  stats timeout 1x\nfrontend f\n  bind :1\n  timeout client 1x\n"
        "  timeout http-request\n  tcp-request inspect-delay 1x\nbackend b\n  timeout connect 1s\n"
        "  timeout server 1s\n  server s 1.1.1.1:1 inter 1x\n",
    )
    # haproxy -c 2.6.12 on the same lines:
    assert lines == [
        # unexpected character 'x' in argument to <hard-stop-after>.
        "ALERT parsing [t.cfg:2] : unexpected character 'x' in argument to <hard-stop-after>.",
        # 'stats timeout' : unexpected character 'x'
        "ALERT parsing [t.cfg:3] : 'stats timeout' : unexpected character 'x'",
        # unexpected character 'x' in 'timeout client'
        "ALERT parsing [t.cfg:6] : unexpected character 'x' in 'timeout client'",
        # 'timeout http-request' expects an integer value (in milliseconds)
        "ALERT parsing [t.cfg:7] : 'timeout http-request' expects an integer value (in milliseconds)",
        # 'tcp-request inspect-delay' expects a positive delay in milliseconds, in frontend 'f' (unexpected ...
        "ALERT parsing [t.cfg:8] : 'tcp-request inspect-delay' expects a positive delay in milliseconds, in "
        "frontend 'f' (unexpected character 'x')",
        # 'server b/s' : unexpected character 'x' in 'agent-inter' argument of server s..  (sic)
        "ALERT parsing [t.cfg:12] : 'server b/s' : unexpected character 'x' in 'inter' argument.",
        # the refused `timeout client` leaves the frontend without one
        "WARNING parsing [t.cfg:4] : missing timeouts for frontend 'f'.\n"
        "   | While not properly invalid, you will certainly encounter various problems\n"
        "   | with such a configuration. To fix this, please ensure that all following\n"
        "   | timeouts are set to a non-zero value: 'client', 'connect', 'server'.",
    ]


def test_http_only_settings_in_tcp_mode_and_log_addresses(tmp_path):
    (tmp_path / "503.http").write_bytes(b"HTTP/1.0 503 Busy\r\n\r\n")
    config, lines = load(
        tmp_path,
        """\
        defaults
            timeout connect 1s
            timeout client 1s
            timeout server 1s
        listen t
            mode tcp
            bind :1
            option forwardfor
            option httplog
            http-request deny
            http-response del-header x
            monitor-uri /x
            server s 1.1.1.1:1 check
        backend b
            mode http
            option httplog
        """,
    )
    # haproxy -c 2.6.12 on the same sections
    assert lines == [
        # parsing [tcpm.cfg:9] : 'option httplog' not usable with proxy 't' (needs 'mode http'). Falling back ...
        "WARNING parsing [t.cfg:9] : 'option httplog' not usable with proxy 't' (needs 'mode http'). "
        "Falling back to 'option tcplog'.",
        # parsing [lf.cfg:10] : backend 'b' : 'option httplog' directive is ignored in backends.
        "WARNING parsing [t.cfg:16] : backend 'b' : 'option httplog' directive is ignored in backends.",
        "WARNING monitor-uri will be ignored for proxy 't' (needs 'mode http').",
        "WARNING log format ignored for proxy 't' since it has no log address.",
        "WARNING 'http-request' rules ignored for proxy 't' as they require HTTP mode.",
        "WARNING 'http-response' rules ignored for proxy 't' as they require HTTP mode.",
        "WARNING 'option forwardfor' ignored for proxy 't' as it requires HTTP mode.",
    ]
    t = config.proxy("t")
    assert (t.tcplog, t.httplog, t.forwardfor, t.monitor_uri, t.rules) == (True, False, None, None, ())


def test_mixed_explicit_and_implicit_defaults(tmp_path):
    config, lines = load(
        tmp_path,
        "defaults web\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n"
        "frontend a from web\n  bind :1\nfrontend b\n  bind :2\n",
    )
    # haproxy prints this as a non-fatal [ALERT] and still says "Configuration file is valid"
    assert lines == [
        "WARNING parsing [t.cfg:8] : defaults section 'web' (declared at t.cfg:1) is explicitly referenced by "
        "another proxy and implicitly used here. To avoid any ambiguity don't mix both usage. Add a last defaults "
        "section not explicitly used or always use explicit references."
    ]
    assert config.proxy("b").mode == "http"


def test_inherited_httplog_falls_back_to_tcplog_in_tcp_mode(tmp_path):
    config, lines = load(
        tmp_path, DEFAULTS + "  option httplog\n  log stdout local0\nlisten t\n  mode tcp\n  bind :1\n"
    )
    assert lines == []  # haproxy -c is silent here too (see tests/data/config/realistic.cfg)
    assert (config.proxy("t").httplog, config.proxy("t").tcplog) == (False, True)


def test_tcp_request_connection_in_backend_is_an_error(tmp_path):
    _, lines = load(
        tmp_path,
        DEFAULTS
        + """\
        backend be
            tcp-request connection reject
            tcp-request session accept
            tcp-request content accept
            server s 127.0.0.1:1
            tcp-request
            tcp-response
            tcp-response frob
        """,
    )
    assert lines == [
        # haproxy: parsing [t3.cfg:7] : tcp-request connection is not allowed because backend be is not a frontend
        "ALERT parsing [t.cfg:7] : tcp-request connection is not allowed because backend be is not a frontend",
        "ALERT parsing [t.cfg:8] : tcp-request session is not allowed because backend be is not a frontend",
        # haproxy: parsing [t3b.cfg:9] : missing argument for 'tcp-request' in backend 'be'
        "ALERT parsing [t.cfg:11] : missing argument for 'tcp-request' in backend 'be'",
        "ALERT parsing [t.cfg:12] : missing argument for 'tcp-response' in backend 'be'",
        # haproxy: 'tcp-response' expects 'inspect-delay' or 'content' in frontend 'fe' (got 'frob')
        "ALERT parsing [t.cfg:13] : 'tcp-response' expects 'inspect-delay' or 'content' in backend 'be' (got 'frob')",
    ]


def test_stick_rules_add_server_id_and_server_key_to_their_table(tmp_path):
    config, lines = load(
        tmp_path,
        DEFAULTS
        + """\
        backend be
            stick-table type ip size 10 store gpc0
            stick on src
            server s1 127.0.0.1:1
        backend be2
            stick-table type ip size 10
            stick match src table be3
            server s1 127.0.0.1:1
        backend be3
            stick-table type ip size 10 store http_req_cnt
            server s1 127.0.0.1:1
        backend be4
            stick-table type ip size 10 store gpc0
            http-request track-sc0 src
            server s1 127.0.0.1:1
        """,
    )
    assert lines == []
    stored = {p.name: [item.name for item in p.stick_table.store] for p in config.proxies}
    # haproxy 2.6.12 `show table` after `set table T key 1.2.3.4`:
    #   be:  server_id=0 gpc0=0 server_key=-      be2: (nothing)
    #   be3: server_id=0 http_req_cnt=0 server_key=-      be4: gpc0=0
    assert stored == {
        "be": ["gpc0", "server_id", "server_key"],
        "be2": [],
        "be3": ["http_req_cnt", "server_id", "server_key"],
        "be4": ["gpc0"],
    }
