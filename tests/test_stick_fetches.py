"""Stick-table keywords through the real rules engine: config text -> compiled rules ->
requests at controlled times -> verdicts and table contents."""

import textwrap

import pytest
from twisted.internet.task import Clock

import minilb.stick.fetches  # noqa: F401  (registers the keywords)
from minilb.config.load import load_config
from minilb.errors import ConfigError
from minilb.rules.compile import compile_rules
from minilb.rules.txn import Session, Txn
from minilb.stick import tracking
from minilb.stick.fetches import sample_key, stick_lookup, stick_store
from minilb.stick.table import StickTable
from tests.support.stick import spec

#: every test on both implementations of the hot paths (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("stick_impl")

HEAD = """\
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
"""


class Site:
    def __init__(self, tmp_path, body):
        path = tmp_path / "h.cfg"
        path.write_text(HEAD + textwrap.dedent(body))
        self.config, _ = load_config([str(path)])
        self.clock = Clock()
        self.clock.advance(1000)
        self.tables = {s.name: StickTable(s, self.clock) for s in self.config.tables()}
        self.rules = compile_rules(self.config, self.tables)

    def get(self, path="/", src="10.0.0.1", proxy="fe", headers=()):
        """One request on a new connection, as the HTTP adapter drives it; the status."""
        rules = self.rules[proxy]
        sess = Session(src=src, src_port=40000, dst="127.0.0.1", dst_port=80, frontend=proxy)
        if not rules.tcp_connection(sess):
            tracking.on_session_end(sess)
            return "rejected"
        tracking.on_session_accept(sess)
        txn = Txn(sess, "GET", path.encode(), path, None, "1.1", [list(h) for h in headers])
        tracking.on_http_request(txn)
        reply = rules.http_request(txn)
        status = 200 if reply is None else reply.status
        tracking.on_http_response(txn, status, "server" if reply is None else "deny")
        tracking.on_txn_end(txn)
        tracking.on_session_end(sess)
        return status

    def value(self, table, key, name, idx=0):
        t = self.tables[table]
        return t.get(t.lookup(t.normalize_key(key)), name, idx)


def test_per_ip_rate_limit_answers_429_and_falls_back_after_the_period(tmp_path):
    site = Site(
        tmp_path,
        """
        frontend fe
            bind 127.0.0.1:8080
            stick-table type ip size 1m expire 60s store http_req_rate(10s)
            http-request track-sc0 src
            http-request deny deny_status 429 if { sc_http_req_rate(0) gt 3 }
        """,
    )
    assert [site.get() for _ in range(5)] == [200, 200, 200, 429, 429]
    assert site.get(src="10.0.0.2") == 200
    site.clock.advance(10)  # one period later 5 in the previous period, fully weighted: 1 + 5
    assert site.get() == 429
    site.clock.advance(20)  # two periods without traffic: the rate is back to 1
    assert site.get() == 200
    assert site.value("fe", "10.0.0.1", "http_req_rate") == 1


def test_abuse_flag_with_gpc0(tmp_path):
    site = Site(
        tmp_path,
        """
        frontend fe
            bind 127.0.0.1:8080
            stick-table type ip size 1m expire 60s store gpc0,http_req_cnt
            http-request track-sc0 src
            http-request deny if { sc0_get_gpc0 gt 0 }
            http-request sc-inc-gpc0(0) if { path_beg /admin }
        """,
    )
    assert site.get("/") == 200
    assert site.get("/admin") == 200  # flagged after the deny rule ran
    assert site.get("/") == 403
    assert site.value("fe", "10.0.0.1", "gpc0") == 1
    assert site.value("fe", "10.0.0.1", "http_req_cnt") == 3
    assert site.get("/", src="10.0.0.9") == 200


def test_per_path_limit_in_a_string_table(tmp_path):
    site = Site(
        tmp_path,
        """
        backend paths
            stick-table type string len 8 size 100 expire 60s store http_req_rate(10s)
        frontend fe
            bind 127.0.0.1:8080
            http-request track-sc1 path table paths
            http-request deny deny_status 429 if { sc1_http_req_rate gt 2 }
        """,
    )
    assert [site.get("/api/v1/x", src=f"10.0.0.{i}") for i in range(3)] == [200, 200, 429]
    assert site.get("/other") == 200
    assert site.value("paths", "/api/v1/", "http_req_rate") == 3  # key truncated to len 8


def test_concurrent_connection_limit_with_tcp_request_connection(tmp_path):
    site = Site(
        tmp_path,
        """
        frontend fe
            bind 127.0.0.1:8080
            stick-table type ip size 1m expire 60s store conn_cur,conn_cnt,sess_cnt
            tcp-request connection track-sc0 src
            tcp-request connection reject if { sc0_conn_cur gt 2 }
        """,
    )
    rules = site.rules["fe"]
    open_sessions = []
    verdicts = []
    for _ in range(4):
        sess = Session(src="10.0.0.1")
        ok = rules.tcp_connection(sess)
        verdicts.append(ok)
        if ok:
            tracking.on_session_accept(sess)
            open_sessions.append(sess)
        else:
            tracking.on_session_end(sess)
    assert verdicts == [True, True, False, False]
    assert site.value("fe", "10.0.0.1", "conn_cur") == 2
    assert site.value("fe", "10.0.0.1", "conn_cnt") == 4
    assert site.value("fe", "10.0.0.1", "sess_cnt") == 2
    for sess in open_sessions:
        tracking.on_session_end(sess)
    assert site.value("fe", "10.0.0.1", "conn_cur") == 0


def test_reading_a_type_the_table_does_not_store_never_matches(tmp_path):
    site = Site(
        tmp_path,
        """
        frontend fe
            bind 127.0.0.1:8080
            stick-table type ip size 1m store gpc0
            http-request track-sc0 src
            http-request deny if { sc0_http_req_rate ge 0 }
            http-request deny if { sc0_conn_cur ge 0 }
        """,
    )
    assert site.get() == 200


def test_untracked_counter_gives_no_sample_but_src_lookups_read_zero(tmp_path):
    site = Site(
        tmp_path,
        """
        frontend fe
            bind 127.0.0.1:8080
            stick-table type ip size 1m store gpc0,http_req_cnt
            http-request deny deny_status 401 if { sc0_get_gpc0 ge 0 }
            http-request deny deny_status 405 if { src_get_gpc0 eq 0 } { path /zero }
            http-request deny deny_status 403 if { src_get_gpc0 gt 0 }
            http-request deny deny_status 404 if { src_inc_gpc0 gt 0 } { path /inc }
        """,
    )
    assert site.get("/zero") == 405  # the absent entry reads 0; nothing was created
    assert site.tables["fe"].used == 0
    assert site.get("/inc") == 404  # src_inc_gpc0 creates the entry and returns 1
    assert site.get("/") == 403


def test_table_converters_and_alternate_tables(tmp_path):
    site = Site(
        tmp_path,
        """
        backend rl
            stick-table type ip size 1m store http_req_cnt,gpc0
        frontend fe
            bind 127.0.0.1:8080
            stick-table type ip size 1m store gpc0
            http-request track-sc0 src table rl
            http-request track-sc1 src
            http-request deny deny_status 429 if { src,table_http_req_cnt(rl) gt 2 }
            http-request deny deny_status 410 if { sc1_get_gpc0(rl) gt 0 }
            http-request deny deny_status 413 if { src,table_gpc0(fe) gt 0 }
        """,
    )
    assert [site.get() for _ in range(3)] == [200, 200, 429]
    t = site.tables["rl"]
    t.set(t.lookup(t.normalize_key("10.0.0.2")) or t.get_or_create(t.normalize_key("10.0.0.2")), "gpc0", 1)
    assert site.get(src="10.0.0.2") == 410  # sc1 tracks fe, its key looked up in rl
    fe = site.tables["fe"]
    fe.set(fe.get_or_create(fe.normalize_key("10.0.0.3")), "gpc0", 2)
    assert site.get(src="10.0.0.3") == 413


def test_gpc_arrays_and_legacy_names(tmp_path):
    site = Site(
        tmp_path,
        """
        frontend fe
            bind 127.0.0.1:8080
            stick-table type ip size 1m store gpc(3),gpc_rate(3,10s),gpt(2)
            http-request track-sc2 src
            http-request sc-inc-gpc(2,2) if { path /two }
            http-request sc-inc-gpc0(2) if { path /zero }
            http-request sc-set-gpt(1,2) 42 if { path /tag }
            http-request sc-set-gpt0(2) int(7) if { path /tag }
            http-request deny deny_status 429 if { sc_get_gpc(2,2) gt 1 }
            http-request deny deny_status 410 if { sc2_get_gpc0 gt 1 }
        """,
    )
    assert site.get("/two") == 200
    assert site.get("/two") == 429
    assert site.value("fe", "10.0.0.1", "gpc", 2) == 2
    assert site.value("fe", "10.0.0.1", "gpc_rate", 2) == 2
    assert site.get("/zero", src="10.0.0.5") == 200
    assert site.get("/zero", src="10.0.0.5") == 410  # gpc0 is gpc[0] here
    site.get("/tag", src="10.0.0.6")
    assert site.value("fe", "10.0.0.6", "gpt", 1) == 42
    assert site.value("fe", "10.0.0.6", "gpt", 0) == 7


def test_trackers_and_tracked(tmp_path):
    site = Site(
        tmp_path,
        """
        frontend fe
            bind 127.0.0.1:8080
            stick-table type ip size 1m store conn_cur
            http-request deny deny_status 401 if { sc0_tracked }
            http-request track-sc0 src
            http-request deny deny_status 405 if !{ sc0_tracked }
            http-request deny deny_status 403 if { sc_trackers(0) eq 1 }
        """,
    )
    assert site.get() == 403


def test_track_without_a_table_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        Site(
            tmp_path,
            """
            frontend fe
                bind 127.0.0.1:8080
                http-request track-sc0 src
            """,
        )
    assert "track-sc0" in str(err.value)


def test_sample_keys_for_each_table_type():
    import ipaddress

    clock = Clock()
    ip = StickTable(spec("a", "ip"), clock)
    ip6 = StickTable(spec("b", "ipv6"), clock)
    num = StickTable(spec("c", "integer"), clock)
    text = StickTable(spec("d", "string", length=4), clock)
    binary = StickTable(spec("e", "binary", length=4), clock)
    v4 = ipaddress.IPv4Address("10.0.0.1")
    assert sample_key(ip, v4) == 0x0A000001
    assert sample_key(ip, ipaddress.IPv6Address("::ffff:10.0.0.1")) == 0x0A000001
    assert sample_key(ip, ipaddress.IPv6Address("::1")) is None
    assert sample_key(ip6, v4) == b"\0" * 10 + b"\xff\xff\x0a\x00\x00\x01"
    assert sample_key(num, 2**32 + 5) == 5
    assert sample_key(num, "12") == 12
    assert sample_key(num, True) == 1
    assert sample_key(text, "abcdef") == b"abcd"
    assert sample_key(text, 12345) == b"1234"
    assert sample_key(binary, b"ab") == b"ab\0\0"
    assert sample_key(ip, None) is None


def test_stick_store_and_lookup():
    clock = Clock()
    table = StickTable(spec("s", "ip", 10, 60_000, "server_id,server_key"), clock)
    key = table.normalize_key("10.0.0.1")
    assert stick_lookup(table, key) is None
    assert stick_store(table, key, 2, "s2")
    clock.advance(30)
    assert stick_lookup(table, key) == (2, "s2")
    assert table.entry(table.lookup(key)).expire_in() == 60_000  # a hit refreshes it


def test_stick_on_match_and_store_request(tmp_path):
    from minilb.stick import persistence

    site = Site(
        tmp_path,
        """
        backend be
            stick-table type ip size 1m expire 30m store server_id,server_key
            stick on src
            stick store-request req.hdr(x-user) table users if { req.hdr(x-user) -m found }
            stick match req.hdr(x-user) table users
            server s1 127.0.0.1:8001
            server s2 127.0.0.1:8002
        backend users
            stick-table type string len 16 size 100 srvkey addr store server_id,server_key
        """,
    )
    rules = site.rules["be"]
    sess = Session(src="10.0.0.1")
    txn = Txn(sess, "GET", b"/", "/", None, "1.1", [[b"X-User", b"ann"]])
    assert persistence.lookup(rules, sess, txn) is None
    stores = persistence.pending_stores(rules, sess, txn)
    assert [(t.name, k) for t, k in stores] == [("be", 0x0A000001), ("users", b"ann")]
    persistence.commit(stores, 2, "s2", "127.0.0.1:8002")
    assert persistence.lookup(rules, sess, txn) == (2, "s2")  # stick on src, first in file order
    other = Session(src="10.0.0.9")
    txn2 = Txn(other, "GET", b"/", "/", None, "1.1", [[b"X-User", b"ann"]])
    assert persistence.lookup(rules, other, txn2) == (2, "127.0.0.1:8002")  # by user, srvkey addr
    txn3 = Txn(other, "GET", b"/", "/", None, "1.1", [])
    assert [t.name for t, _ in persistence.pending_stores(rules, other, txn3)] == ["be"]
