"""The data path on a real compiled config (ConfigHarness): stick persistence
(``stick on`` / ``stick match`` / ``stick store-request`` choose the server before the
balancer, the chosen server is stored once it answered), what stick counters count
(http_err, bytes), and request rewrites by rules reaching the server."""

from __future__ import annotations

from tests.support.http import ConfigHarness

CFG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen web
    bind 127.0.0.1:1
    balance roundrobin
    {stick}
    server s1 127.0.0.1:8001
    server s2 127.0.0.1:8002
"""
TABLE = "stick-table type ip size 1k expire 30m store server_id,server_key\n    stick on src"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


def servers_chosen(h, sources):
    """Each source sends one request on its own connection; the servers dialled, in order."""
    chosen = []
    for i, src in enumerate(sources):
        c, ct = h.client("web", src=src, port=40000 + i)
        c.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        server = h.connector.attempts[-1][0]
        chosen.append(server.name)
        conn, _st = h.connector.succeed()
        conn.dataReceived(OK)
        assert ct.value().endswith(b"\r\n\r\nhi")
    return chosen


def test_without_stick_rules_roundrobin_alternates(tmp_path):
    h = ConfigHarness(tmp_path, CFG.format(stick=""))
    assert servers_chosen(h, ["10.0.0.1", "10.0.0.1", "10.0.0.1"]) == ["s1", "s2", "s1"]


def test_stick_on_src_keeps_a_client_on_its_server(tmp_path):
    h = ConfigHarness(tmp_path, CFG.format(stick=TABLE))
    chosen = servers_chosen(h, ["10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2", "10.0.0.2"])
    assert chosen == ["s1", "s1", "s2", "s1", "s2", "s2"]  # roundrobin alone: s1 s2 s1 s2 s1 s2
    table = h.tables["web"]
    row = table.lookup(table.normalize_key("10.0.0.2"))
    assert table.entry(row).get("server_id") == 2
    assert table.entry(row).get("server_key") == "s2"


def test_a_down_server_is_not_stuck_to(tmp_path):
    h = ConfigHarness(tmp_path, CFG.format(stick=TABLE))
    assert servers_chosen(h, ["10.0.0.1", "10.0.0.1"]) == ["s1", "s1"]
    h.service.backends["web"].servers[0].up = False
    assert servers_chosen(h, ["10.0.0.1", "10.0.0.1"]) == ["s2", "s2"]  # stored again: s2


BYTES_CFG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen web
    bind 127.0.0.1:1
    stick-table type ip size 1k expire 30m store {store}
    http-request track-sc0 src
    server s1 127.0.0.1:8001
"""


def test_byte_accounting_only_when_a_table_stores_bytes(tmp_path, monkeypatch):
    from minilb.stick import tracking

    calls = []
    real = tracking.on_bytes
    monkeypatch.setattr(tracking, "on_bytes", lambda *a: (calls.append(a), real(*a)))
    h = ConfigHarness(tmp_path, BYTES_CFG.format(store="http_req_rate(10s)"))
    assert servers_chosen(h, ["10.0.0.1"]) == ["s1"]
    assert calls == []  # nothing stores bytes: no accounting call at all
    table = h.tables["web"]
    assert table.entry(table.lookup(table.normalize_key("10.0.0.1"))).get("http_req_rate") == 1

    h = ConfigHarness(tmp_path, BYTES_CFG.format(store="bytes_out_cnt,bytes_in_cnt"))
    assert servers_chosen(h, ["10.0.0.2"]) == ["s1"]
    table = h.tables["web"]
    # counted as haproxy 2.6 does: 4 bytes less per header line (one here) than on the wire
    assert table.entry(table.lookup(table.normalize_key("10.0.0.2"))).get("bytes_out_cnt") == len(OK) - 4
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"  # as servers_chosen sends it
    assert table.entry(table.lookup(table.normalize_key("10.0.0.2"))).get("bytes_in_cnt") == len(request) - 4


ERR_CFG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:1
    stick-table type ip size 1k expire 30m store http_req_cnt,http_err_cnt
    http-request track-sc0 src
    http-request return status 404 if { path /missing }
    http-request redirect location /elsewhere code 302 if { path /moved }
    http-request deny deny_status 429 if { path /deny }
    http-request tarpit deny_status 403 if { path /tarpit }
    http-request return status 200 content-type text/plain string ok
"""


def test_http_err_counts_denies_and_tarpits_not_returns(tmp_path):
    """As haproxy 2.6.12: a deny or a tarpit is an http_err of the tracked entry, an
    `http-request return` (even 404) or a redirect is not."""
    h = ConfigHarness(tmp_path, ERR_CFG)
    table = h.tables["web"]

    def counts():
        entry = table.entry(table.lookup(table.normalize_key("10.0.0.1")))
        return entry.get("http_req_cnt"), entry.get("http_err_cnt")

    c, ct = h.client("web")
    for path, status in [("/missing", b"404"), ("/moved", b"302"), ("/", b"200")]:
        c.dataReceived(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        assert ct.value().startswith(b"HTTP/1.1 " + status), ct.value()
        ct.clear()
    assert counts() == (3, 0)
    c.dataReceived(b"GET /deny HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ct.value().startswith(b"HTTP/1.1 429")
    assert counts() == (4, 1)
    ct.clear()
    c.dataReceived(b"GET /tarpit HTTP/1.1\r\nHost: x\r\n\r\n")
    h.reactor.advance(10)  # timeout tarpit defaults to timeout connect
    assert ct.value().startswith(b"HTTP/1.1 403")
    assert counts() == (5, 2)


def test_nothing_is_stored_for_a_server_that_never_answered(tmp_path):
    h = ConfigHarness(tmp_path, CFG.format(stick=TABLE + "\n    retries 0"))
    c, ct = h.client("web", src="10.0.0.7")
    c.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert h.connector.fail().name == "s1"
    assert ct.value().startswith(b"HTTP/1.1 503")
    table = h.tables["web"]
    assert table.lookup(table.normalize_key("10.0.0.7")) is None
    assert servers_chosen(h, ["10.0.0.7", "10.0.0.7"]) == ["s2", "s2"]


REWRITE_CFG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:1
    http-request set-header X-Seen yes
    default_backend app
backend app
    http-request set-path /fail if { path /rewritten }
    http-request set-method POST if { path /fail }
    server s1 127.0.0.1:8001
"""


def test_request_rewrites_by_rules_reach_the_server(tmp_path):
    h = ConfigHarness(tmp_path, REWRITE_CFG)
    c, ct = h.client("web")
    c.dataReceived(b"GET /rewritten?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    conn, st = h.connector.succeed()
    assert st.value() == b"POST /fail?q=1 HTTP/1.1\r\nhost: x\r\nx-seen: yes\r\n\r\n"
