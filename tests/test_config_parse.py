"""Section parsers: global, defaults inheritance, proxies, servers, stick tables, peers.
Messages marked "haproxy:" were printed by haproxy -c 2.6.12 for the same line."""

from __future__ import annotations

from minilb.config.model import Address, StoreItem, TLSOptions
from tests.support.config import DEFAULTS, load


def test_global_section(tmp_path):
    config, warnings = load(
        tmp_path,
        """\
        global
            daemon
            master-worker
            pidfile /run/minilb.pid
            nbthread 2
            maxconn 5000
            localpeer lb1
            hard-stop-after 30s
            stats socket /run/minilb.sock mode 600 level admin expose-fd listeners
            stats socket ipv4@127.0.0.1:9999
            stats timeout 1m
            log stdout format raw local0 info
            tune.bufsize 32768
            tune.peers.max-updates-at-once 100
            setenv BACKEND_PORT 8081
            ssl-default-bind-options ssl-min-ver TLSv1.2
            user haproxy
            ulimit-n 4096
        """,
    )
    g = config.global_
    assert (g.daemon, g.master_worker, g.pidfile, g.nbthread, g.maxconn) == (
        True,
        True,
        "/run/minilb.pid",
        2,
        5000,
    )
    assert (g.localpeer, g.hard_stop_after, g.stats_timeout, g.tune_bufsize) == ("lb1", 30000, 60000, 32768)
    assert g.tune_peers_max_updates_at_once == 100
    first, second = g.stats_sockets
    assert (first.address.path, first.mode, first.level, first.expose_fd_listeners) == (
        "/run/minilb.sock",
        0o600,
        "admin",
        True,
    )
    assert (second.address, second.level) == (
        Address("ipv4", "127.0.0.1", 9999, text="ipv4@127.0.0.1:9999"),
        "operator",
    )
    assert (g.log_targets[0].target, g.log_targets[0].format, g.log_targets[0].level) == (
        "stdout",
        "raw",
        "info",
    )
    assert g.setenv == (("BACKEND_PORT", "8081"),)
    assert g.ssl_default_bind_options == ("ssl-min-ver", "TLSv1.2")
    assert config.localpeer == "lb1"
    # `user` changes security semantics: warned; ulimit-n is accepted silently
    assert warnings == ["WARNING parsing [t.cfg:17] : 'user' is not supported by minilb and is ignored."]


def test_setenv_affects_later_lines(tmp_path):
    config, _ = load(
        tmp_path,
        """\
        global
            setenv PORT 8088
            presetenv PORT 9999
        frontend fe
            bind ":${PORT}"
        """,
    )
    assert config.proxies[0].binds[0].address.port == 8088


def test_defaults_inheritance_named_and_from(tmp_path):
    (tmp_path / "503.http").write_bytes(b"HTTP/1.0 503 Busy\r\n\r\n")
    config, lines = load(
        tmp_path,
        """\
        defaults base
            mode http
            timeout connect 3s
            timeout client 10s
            timeout server 10s
            option httplog
            option forwardfor except 127.0.0.0/8
            balance leastconn
            retries 5
            default-server inter 1s fall 2 check
            errorfile 503 ERRFILE
        defaults tcpdef
            mode tcp
            timeout connect 1s
        backend b1 from base
            server s1 127.0.0.1:8001
            server s2 127.0.0.1:8002 fall 7 no-check
        backend b2
            server s 127.0.0.1:8003
        frontend fe from base
            bind :8080
            no option dontlognull
            default_backend b1
        """.replace("ERRFILE", str(tmp_path / "503.http")),
    )
    assert config is not None, lines
    b1, b2, fe = config.proxies
    assert (b1.mode, b1.timeouts.connect, b1.balance.algorithm, b1.retries) == ("http", 3000, "leastconn", 5)
    assert b1.forwardfor is not None and b1.forwardfor.except_net == "127.0.0.0/8"
    s1, s2 = b1.servers
    assert (s1.inter, s1.fall, s1.check) == (1000, 2, True)
    assert (s2.inter, s2.fall, s2.check) == (1000, 7, False)
    assert b1.errorfiles[0].content == b"HTTP/1.0 503 Busy\r\n\r\n"
    # without `from`, the last defaults section applies
    assert (b2.mode, b2.timeouts.connect, b2.timeouts.server, b2.httplog) == ("tcp", 1000, None, False)
    assert (fe.httplog, fe.dontlognull, fe.from_defaults) == (True, False, "base")
    assert config.defaults[0].name == "base"


def test_proxy_keywords(tmp_path):
    config, warnings = load(
        tmp_path,
        DEFAULTS
        + """\
        frontend fe
            bind 127.0.0.1:8080,127.0.0.1:8081 name web accept-proxy
            bind [::1]:8443 ssl crt /a.pem crt /b.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2 verify none
            maxconn 100
            option http-server-close
            option dontlognull
            timeout http-request 5s
            monitor-uri /health
            tcp-request inspect-delay 2s
            tcp-request connection reject if { src 10.0.0.0/8 }
            acl is_api path_beg /api
            http-request deny deny_status 403 if !is_api { method POST }
            use_backend api if is_api
            default_backend web
            stick-table type string len 32 size 1m expire 10m store gpc0,http_req_rate(10s),gpc_rate(3,1m)
        backend api
            balance hdr(Host) use_domain_only
            hash-type consistent sdbm avalanche
            option httpchk GET /health HTTP/1.1
            http-check send hdr Host example.com
            http-check expect status 200
            http-reuse always
            stick on src
            server a 10.0.0.1:80 weight 20 backup maxconn 30 maxqueue 5 inter 3s rise 4 port 81 id 7
            server b 10.0.0.2 ssl verify required ca-file /ca.pem sni str(example.com) send-proxy disabled
        backend web
            balance url_param userid
            server w unix@/run/app.sock
        """,
    )
    fe, api, web = config.proxies
    assert [str(b.address) for b in fe.binds] == ["127.0.0.1:8080", "127.0.0.1:8081", "[::1]:8443"]
    assert fe.binds[0].name == "web" and fe.binds[0].accept_proxy
    tls = fe.binds[2].tls
    assert (tls.enabled, tls.crt, tls.alpn, tls.ssl_min_ver, tls.verify) == (
        True,
        ("/a.pem", "/b.pem"),
        ("h2", "http/1.1"),
        "TLSv1.2",
        "none",
    )
    assert (fe.maxconn, fe.http_connection_mode, fe.dontlognull, fe.timeouts.http_request) == (
        100,
        "server-close",
        True,
        5000,
    )
    assert (fe.monitor_uri, fe.tcp_inspect_delay) == ("/health", 2000)
    assert [r.keyword for r in fe.rules] == ["tcp-request connection", "http-request", "use_backend"]
    assert fe.rules[1].words == ("deny", "deny_status", "403", "if", "!is_api", "{", "method", "POST", "}")
    assert fe.acls[0].name == "is_api" and fe.acls[0].words == ("path_beg", "/api")
    assert fe.use_backends[0].backend == "api" and fe.use_backends[0].cond == ("if", "is_api")
    t = fe.stick_table
    assert (t.name, t.wire_name, t.key_type, t.key_len, t.size, t.expire) == (
        "fe",
        "fe",
        "string",
        33,
        1 << 20,
        600000,
    )
    assert t.store == (
        StoreItem("gpc0"),
        StoreItem("http_req_rate", period=10000),
        StoreItem("gpc_rate", period=60000, count=3),
    )
    assert (api.balance.algorithm, api.balance.arg, api.balance.options) == (
        "hdr",
        "Host",
        ("use_domain_only",),
    )
    assert api.hash_type == ("consistent", "sdbm", "avalanche")
    assert api.httpchk is not None
    assert (api.httpchk.method, api.httpchk.uri, api.httpchk.version, api.httpchk.host) == (
        "GET",
        "/health",
        "HTTP/1.1",
        "example.com",
    )
    assert api.httpchk.expect == ("status", "200")
    assert api.http_reuse == "always" and api.rules[0].keyword == "stick on"
    a, b = api.servers
    assert (a.weight, a.backup, a.maxconn, a.maxqueue, a.inter, a.rise, a.check_port, a.id) == (
        20,
        True,
        30,
        5,
        3000,
        4,
        81,
        7,
    )
    assert (
        b.address.port,
        b.tls.enabled,
        b.tls.verify,
        b.tls.ca_file,
        b.tls.sni,
        b.send_proxy,
        b.disabled,
    ) == (
        None,
        True,
        "required",
        "/ca.pem",
        "str(example.com)",
        True,
        True,
    )
    assert (web.balance.algorithm, web.balance.arg) == ("url_param", "userid")
    assert web.servers[0].address.family == "unix"
    # ids as haproxy assigns them: a counter advancing per server, explicit ids kept
    assert [s.id for s in api.servers] == [7, 2]
    assert [p.id for p in config.proxies] == [1, 2, 3]
    assert warnings == []


def test_server_ids_follow_haproxy(tmp_path):
    # haproxy 2.6.12 `show stat`: a=2, b=1 (explicit), c=4
    config, _ = load(
        tmp_path, "backend be\n server a 1.1.1.1:80\n server b 1.1.1.1:80 id 1\n server c 1.1.1.1:80\n"
    )
    assert [s.id for s in config.proxies[0].servers] == [2, 1, 4]


def test_stick_table_errors(tmp_path):
    # each message as haproxy -c 2.6.12 printed it for the same stick-table line
    cases = {
        "type ip size 1m store http_req_rate": "stick-table: missing argument to store option 'http_req_rate'.",
        "type ip size 1m store gpc0,gpc(2)": "stick-table: simultaneous usage of 'gpc' and 'gpc[0/1]' in a same "
        "table is not permitted as 'gpc' overrides 'gpc[0/1]'.",
        "type ip size 1m store gpc(200)": "stick-table: array size is out of allowed range (1-100) for store "
        "option 'gpc'.",
        "type ip size 1m store frob": "stick-table: unknown store option 'frob'.",
        "type ip": "stick-table: missing size.",
        "type foo size 1": "stick-table: unknown type 'foo'.",
        "size 1m": "stick-table: missing type.",
        "type ip size 1m expire 1x": "stick-table: unexpected character 'x' in argument of 'expire'.",
        "type ip size 1m nopurge frob": "stick-table: unknown argument 'frob'.",
        "type ip size 1m store gpc_rate(2)": "stick-table: missing argument to store option 'gpc_rate'.",
        "type ip size 1m store conn_cnt(10s)": "stick-table: unexpected argument to store option 'conn_cnt'.",
        "type integer len 4 size 1": "stick-table: unknown argument 'len'.",
    }
    for words, message in cases.items():
        _, lines = load(
            tmp_path, f"backend b\n  timeout connect 1s\n  timeout server 1s\n  stick-table {words}\n"
        )
        assert lines == [f"ALERT parsing [t.cfg:4] : {message}"], words
    _, lines = load(
        tmp_path,
        "backend b\n  stick-table type ip size 1m store gpc0 store gpc0\n  timeout connect 1s\n  timeout server 1s\n",
    )
    assert lines == ["WARNING parsing [t.cfg:2] : stick-table: store option 'gpc0' already enabled, ignored."]


def test_peers_sections(tmp_path):
    config, warnings = load(
        tmp_path,
        """\
        peers mesh
            peer lb1 127.0.0.1:10001
            peer lb2 127.0.0.1:10002
            table clients type ip size 100k expire 1m store http_req_rate(10s)
        peers binds
            default-bind v4v6
            bind :10010 ssl crt /p.pem
            default-server ssl verify none
            server lb1
            server lb2 10.0.0.2:10010
        peers solo
            peer lb1 127.0.0.1:10020
        """,
        localpeer="lb1",
    )
    mesh, binds, solo = config.peers
    assert [(p.name, p.address.port) for p in mesh.peers] == [("lb1", 10001), ("lb2", 10002)]
    assert mesh.bind is not None and mesh.bind.address.port == 10001 and mesh.local_peer == "lb1"
    (table,) = mesh.tables
    assert (table.name, table.wire_name, table.key_len) == ("mesh/clients", "/clients", 4)
    assert table.peers == "mesh"  # replicated by the section that declares it
    assert binds.bind is not None and binds.bind.v4v6 and binds.bind.tls.crt == ("/p.pem",)
    assert [(p.name, p.syntax, p.address is None, p.tls.enabled) for p in binds.peers] == [
        ("lb1", "server", True, True),
        ("lb2", "server", False, True),
    ]
    assert solo.peers[0].name == "lb1"  # a section with only the local peer is valid
    assert config.tables()[0].name == "mesh/clients"
    assert warnings == []


def test_peers_errors_like_haproxy(tmp_path):
    _, lines = load(
        tmp_path,
        """\
        peers p
            peer me 127.0.0.1:10000
            bind 127.0.0.1:10002
            peer me 127.0.0.1:10003
        peers s
            server me 127.0.0.1:1
            server other 127.0.0.1:10007
            server other 127.0.0.1:10008
        peers
        """,
        localpeer="me",
    )
    assert lines == [
        # haproxy: parsing [c.cfg:5] : mixing "peer" and "bind" line is forbidden
        'ALERT parsing [t.cfg:3] : mixing "peer" and "bind" line is forbidden',
        # haproxy: parsing [c.cfg:6] : 'peer me' : local peer name already referenced at c.cfg:5.
        "ALERT parsing [t.cfg:4] : 'peer me' : local peer name already referenced at t.cfg:2.",
        # haproxy: 'server me/me' : unknown keyword '127.0.0.1:1'. Hint: no address was expected for this server.
        "ALERT parsing [t.cfg:6] : 'server s/me' : unknown keyword '127.0.0.1:1'. "
        "Hint: no address was expected for this server.",
        # haproxy accepts a repeated remote peer silently; minilb warns
        "WARNING parsing [t.cfg:8] : 'server other' : peer name already referenced at t.cfg:7, line ignored.",
        # haproxy: parsing [pp.cfg:1] : missing name for peers section.
        "ALERT parsing [t.cfg:9] : missing name for peers section.",
        # the local `server me` line was refused, so the section has no local peer
        "WARNING Removing incomplete section 'peers s' (no peer named 'me').",
    ]


def test_missing_local_peer_removes_section(tmp_path):
    config, lines = load(tmp_path, "peers p\n  peer a 127.0.0.1:1\n  peer b 127.0.0.1:2\n", hostname="vm")
    # haproxy: [WARNING] ... Removing incomplete section 'peers p' (no peer named 'vm').
    assert lines == ["WARNING Removing incomplete section 'peers p' (no peer named 'vm')."]
    assert config.peers == ()


def test_removed_peers_section_keeps_its_tables_locally(tmp_path):
    # haproxy -c accepts conf/peers.cfg without -L: the section goes, its tables stay
    config, lines = load(
        tmp_path,
        "peers p\n  peer a 127.0.0.1:1\n  table t type ip size 10 store gpc0\n"
        + DEFAULTS
        + "frontend f\n  bind :8080\n  http-request track-sc0 src table p/t\n",
        hostname="vm",
    )
    assert lines == ["WARNING Removing incomplete section 'peers p' (no peer named 'vm')."]
    assert config.peers == ()
    (table,) = config.tables()
    assert (table.name, table.wire_name, table.peers) == ("p/t", "/t", None)


def test_local_tls_server_with_plain_bind(tmp_path):
    _, lines = load(
        tmp_path,
        "peers r\n  bind 127.0.0.1:10006\n  server me ssl verify none\n  server o 127.0.0.1:10007 ssl verify none\n",
        localpeer="me",
    )
    # haproxy: Peers section 'me': local peer have a non-SSL listener and a SSL server configured at line pp.cfg:2.
    assert lines == [
        "WARNING parsing [t.cfg:3] : Peers section 'r': local peer have a non-SSL listener and a SSL server "
        "configured at line t.cfg:2."
    ]


def test_files_do_not_continue_sections(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "10-global.cfg").write_text("global\n  daemon\n")
    (tmp_path / "d" / "20-more.cfg").write_text("  nbthread 2\n")
    (tmp_path / "d" / "ignored.txt").write_text("garbage\n")
    from minilb.config.load import load_config
    from minilb.errors import ConfigError

    try:
        load_config([str(tmp_path / "d")], environ={}, hostname="h")
    except ConfigError as exc:
        # haproxy: parsing [e2.cfg:1]: unknown keyword 'nbthread' out of section.
        assert [str(d).replace(f"{tmp_path}/", "") for d in exc.diagnostics] == [
            "parsing [d/20-more.cfg:1] : unknown keyword 'nbthread' out of section."
        ]
    else:
        raise AssertionError("expected an error")


def test_negation_only_for_negatable_options(tmp_path):
    _, lines = load(
        tmp_path, "frontend fe\n  bind :8000\n  no option httplog\n  no bind\n  timeout client 1s\n"
    )
    assert lines == [
        # haproxy: parsing [n.cfg:6]: negation/default is not supported for option 'httplog'.
        "ALERT parsing [t.cfg:3] : negation/default is not supported for option 'httplog'.",
        "ALERT parsing [t.cfg:4] : negation/default currently supported only for options, log, busy-polling, "
        "set-dumpable, strict-limits, insecure-fork-wanted and numa-cpu-mapping.",
    ]


def test_proxy_ids_follow_haproxy(tmp_path):
    body = (
        DEFAULTS
        + """\
        frontend fe
            bind :1
        backend be
            server a 127.0.0.1:80
        backend bx
            id 2
        listen st
            bind :2
        """
    )
    config, _ = load(tmp_path, body)
    # haproxy 2.6.12 `show stat` iid column: fe=1 be=3 bx=2 st=5
    assert [p.id for p in config.proxies] == [1, 3, 2, 5]
    config, _ = load(tmp_path, "global\n  stats socket /tmp/x.sock\n" + body)
    # with a stats socket the internal CLI proxy takes id 1: fe=3 be=4 bx=2 st=6
    assert [p.id for p in config.proxies] == [3, 4, 2, 6]


def test_haproxy_localpeer_variable(tmp_path):
    text = 'global\n  .notice "${HAPROXY_LOCALPEER}"\n  localpeer lb9\n  .notice "${HAPROXY_LOCALPEER}"\n'
    _, lines = load(tmp_path, text, hostname="host1")
    assert lines == ["NOTICE parsing [t.cfg:2] : 'host1'.", "NOTICE parsing [t.cfg:4] : 'lb9'."]
    _, lines = load(tmp_path, text.replace("  localpeer lb9\n", ""), localpeer="cli")
    assert lines == ["NOTICE parsing [t.cfg:2] : 'cli'.", "NOTICE parsing [t.cfg:3] : 'cli'."]


def test_unsupported_bind_and_server_options_warn(tmp_path):
    config, lines = load(
        tmp_path,
        DEFAULTS
        + "frontend f\n  bind :1 ssl crt-list /x.lst tfo\n"
        + "backend b\n  server s 1.1.1.1:1 slowstart 10s weight 5 check agent-check\n",
    )
    assert lines == [
        "WARNING parsing [t.cfg:7] : bind option 'crt-list' is not supported by minilb and is ignored.",
        "WARNING parsing [t.cfg:7] : bind option 'tfo' is not supported by minilb and is ignored.",
        "WARNING parsing [t.cfg:9] : 'server b/s' : server option 'slowstart' is not supported by minilb and is "
        "ignored.",
        "WARNING parsing [t.cfg:9] : 'server b/s' : server option 'agent-check' is not supported by minilb and is "
        "ignored.",
    ]
    server = config.proxy("b").servers[0]
    assert (server.weight, server.check) == (5, True)  # options after an ignored one still apply


def test_defaults_carry_over_to_later_files(tmp_path):
    from minilb.config.load import load_config
    from minilb.errors import ConfigError

    first = tmp_path / "1.cfg"
    first.write_text(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n"
    )
    second = tmp_path / "2.cfg"
    second.write_text("frontend f\n  bind :1\n  default_backend b\nbackend b\n  mode tcp\n")
    try:
        load_config([str(first), str(second)], environ={}, hostname="h")
    except ConfigError as exc:
        # haproxy -c -f m1.cfg -f m2.cfg: the frontend is http from the first file's defaults
        assert [str(d).replace(f"{tmp_path}/", "") for d in exc.diagnostics] == [
            "parsing [2.cfg:3] : http frontend 'f' (2.cfg:1) tries to use incompatible tcp backend 'b' (2.cfg:4) "
            "as its default backend (see 'mode')."
        ]
    else:
        raise AssertionError("expected the mode mismatch")


def test_localpeer_after_peers_is_ignored(tmp_path):
    config, lines = load(
        tmp_path,
        "peers p\n  peer vm 127.0.0.1:10000\n  peer other 127.0.0.1:10001\nglobal\n  localpeer me\n",
        hostname="vm",
    )
    # haproxy: parsing [lp2.cfg:5] : 'localpeer' ignored since it is used after 'peers' section.
    assert lines == [
        "WARNING parsing [t.cfg:5] : 'localpeer' ignored since it is used after 'peers' section."
    ]
    assert config.localpeer == "vm" and config.peers[0].bind is not None


def test_global_tls_defaults_merge_into_binds_and_servers(tmp_path):
    config, lines = load(
        tmp_path,
        """\
        global
            ssl-default-bind-ciphers ECDHE-RSA-AES128-GCM-SHA256
            ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256
            ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
            ssl-default-bind-options prefer-client-ciphers no-sslv3
            ssl-default-server-ciphers AES256-SHA
            ssl-default-server-options force-tlsv12
        """
        + DEFAULTS
        + """\
        frontend f
            bind :8443 ssl crt /a.pem
            bind :8444 ssl crt /a.pem ciphers AES128-SHA ssl-min-ver TLSv1.3
            bind :8080
            default_backend b
        backend b
            server s1 127.0.0.1:1 ssl verify none
            server s2 127.0.0.1:2 ssl verify none ciphers X ssl-max-ver TLSv1.3
            server s3 127.0.0.1:3
        """,
    )
    # haproxy 2.6.12 says the same of both binds: the global ssl-min-ver overrides no-sslv3
    fix = "Use only 'ssl-min-ver' and 'ssl-max-ver' to fix."
    assert lines == [
        f"WARNING parsing [t.cfg:14] : no-sslv3/no-tlsv1x are ignored for bind ':8443'. {fix}",
        f"WARNING parsing [t.cfg:15] : no-sslv3/no-tlsv1x are ignored for bind ':8444'. {fix}",
    ]
    plain_bind = config.proxy("f").binds[0].tls
    assert (plain_bind.ciphers, plain_bind.ciphersuites) == (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_AES_128_GCM_SHA256",
    )
    assert (plain_bind.ssl_min_ver, plain_bind.no_versions) == ("TLSv1.2", ("SSLv3",))
    assert (plain_bind.tls_tickets, plain_bind.prefer_client_ciphers) == (False, True)
    own = config.proxy("f").binds[1].tls  # per-line options win
    assert (own.ciphers, own.ssl_min_ver, own.tls_tickets) == ("AES128-SHA", "TLSv1.3", False)
    assert config.proxy("f").binds[2].tls.ciphers is None  # no ssl on the line: untouched
    s1, s2, s3 = (s.tls for s in config.proxy("b").servers)
    assert (s1.ciphers, s1.ssl_min_ver, s1.ssl_max_ver, s1.tls_tickets) == (
        "AES256-SHA",
        "TLSv1.2",
        "TLSv1.2",
        True,
    )
    assert (s2.ciphers, s2.ssl_min_ver, s2.ssl_max_ver) == ("X", "TLSv1.2", "TLSv1.3")
    assert s3 == TLSOptions()


def test_global_tls_default_options_checked_like_haproxy(tmp_path):
    _, lines = load(
        tmp_path,
        """\
        global
            ssl-default-bind-options no-sslv3 frob
            ssl-default-server-options prefer-client-ciphers
            ssl-default-bind-options ssl-min-ver TLSv9
            ssl-default-bind-options ssl-min-ver
            ssl-default-server-options
        """,
    )
    assert lines == [
        # haproxy: parsing [t4.cfg:2] : unknown option 'frob' on global statement 'ssl-default-bind-options'.
        "ALERT parsing [t.cfg:2] : unknown option 'frob' on global statement 'ssl-default-bind-options'.",
        "ALERT parsing [t.cfg:3] : unknown option 'prefer-client-ciphers' on global statement "
        "'ssl-default-server-options'.",
        # haproxy: parsing [t4.cfg:4] : 'TLSv9' : unknown ssl/tls version on global statement '...'.
        "ALERT parsing [t.cfg:4] : 'TLSv9' : unknown ssl/tls version on global statement 'ssl-default-bind-options'.",
        "ALERT parsing [t.cfg:5] : 'ssl-min-ver' : missing the ssl/tls version on global statement "
        "'ssl-default-bind-options'.",
        "ALERT parsing [t.cfg:6] : global statement 'ssl-default-server-options' expects an option as an argument.",
    ]


def test_log_format_is_kept_but_warned_as_not_rendered(tmp_path):
    """minilb logs in httplog/tcplog format: a custom log-format must not pass silently."""
    from minilb.config.load import load_config

    cfg = tmp_path / "lf.cfg"
    cfg.write_text(
        "defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\n"
        'frontend fe\n    bind 127.0.0.1:1\n    log-format "%ci %ST"\n'
    )
    config, warnings = load_config([str(cfg)])
    assert config.proxy("fe").log_format == "%ci %ST"
    assert [str(w) for w in warnings if "log-format" in str(w)] == [
        f"parsing [{cfg}:8] : 'log-format' is not rendered by minilb: its log lines keep the "
        "'option httplog' / 'option tcplog' format."
    ]
