"""Stick-table life and the table commands of the stats socket, compared with real
HAProxy 2.6 on one configuration (see `tests.support.conformance`).

One pair of processes serves the whole module: every test has its own frontend,
table and client addresses, so the tests do not see each other's entries.  Values
read by the rules are compared through ``lf-string`` answers (the answer's bytes),
values stored through ``show table``.
"""

from __future__ import annotations

import pytest

from tests.conftest import requires_haproxy
from tests.support.conformance import Cli, Pair, Send, ShowTable, Wait, assert_same

pytestmark = [pytest.mark.integration, pytest.mark.interop, requires_haproxy]

CONFIG = """\
global
    stats socket ipv4@127.0.0.1:@STATS@ level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

frontend short
    bind 127.0.0.1:@SHORT@
    stick-table type ip size 100 expire 1s store http_req_cnt
    http-request track-sc0 src
    http-request return status 200 content-type text/plain lf-string "cnt=%[sc_http_req_cnt(0)]"

frontend small
    bind 127.0.0.1:@SMALL@
    stick-table type ip size 2 expire 10s store http_req_cnt
    http-request track-sc0 src
    http-request return status 200 content-type text/plain lf-string "cnt=%[sc_http_req_cnt(0)] trackers=%[sc_trackers(0)]"

frontend full
    bind 127.0.0.1:@FULL@
    stick-table type ip size 2 expire 10s nopurge store http_req_cnt
    http-request track-sc0 src
    http-request return status 200 content-type text/plain lf-string "cnt=%[sc_http_req_cnt(0)]"

frontend gpcs
    bind 127.0.0.1:@GPCS@
    stick-table type ip size 100 expire 10s store gpc(3),gpc_rate(3,2s),gpt(2)
    http-request track-sc2 src
    http-request sc-inc-gpc(1,2)
    http-request sc-set-gpt(1,2) 9
    http-request deny deny_status 403 if { src_get_gpc(0,gpcs) gt 0 }
    http-request return status 200 content-type text/plain lf-string "gpc1=%[sc_get_gpc(1,2)] rate=%[sc_gpc_rate(1,2)] gpt1=%[sc_get_gpt(1,2)]"

frontend count
    bind 127.0.0.1:@COUNT@
    stick-table type ip size 100 expire 10s store http_req_rate(2s),http_req_cnt
    http-request track-sc0 src
    http-request return status 200 content-type text/plain string counted

frontend peek
    bind 127.0.0.1:@PEEK@
    http-request return status 200 content-type text/plain lf-string "rate=%[src_http_req_rate(count)] cnt=%[src,table_http_req_cnt(count)]"

frontend blocklist
    bind 127.0.0.1:@BLOCK@
    stick-table type ip size 100 expire 10s store gpc0,http_req_rate(2s),http_req_cnt,http_err_cnt
    http-request track-sc0 src
    http-request deny if { path_beg /admin }
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 3 }
    http-request deny deny_status 403 content-type text/plain string blocked if { src_get_gpc0(blocklist) gt 0 }
    http-request return status 200 content-type text/plain string ok
"""


@pytest.fixture(scope="module")
def pair():
    with Pair.start(CONFIG) as started:
        yield started


def test_an_entry_expires_after_expire_and_comes_back_fresh(pair):
    assert_same(
        pair,
        [
            Send(2, src="127.0.0.2", port="SHORT", answer=True),
            ShowTable("short"),
            Wait(1300),  # past 'expire 1s', nothing tracks it any more
            ShowTable("short"),
            Send(1, src="127.0.0.2", port="SHORT", answer=True),  # cnt=1 again
        ],
    )


def test_a_full_table_purges_its_least_recently_used_entry(pair):
    """Only the purge of an entry untouched since its creation is compared: when the
    candidates are an older entry touched again after its creation and a newer one,
    haproxy 2.6.12 purges either (about one run in three it keeps the older one),
    so that choice is not a conformance point."""
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.2", port="SMALL"),
            Send(2, src="127.0.0.3", port="SMALL"),
            Send(1, src="127.0.0.4", port="SMALL", answer=True),  # size 2: 127.0.0.2 goes
            ShowTable("small"),
        ],
    )
    assert "key=127.0.0.2" not in str(haproxy[-1].value)


def test_a_full_nopurge_table_refuses_new_entries(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.2", port="FULL"),
            Send(1, src="127.0.0.3", port="FULL"),
            Send(1, src="127.0.0.4", port="FULL", answer=True),  # not tracked: the fetch is empty
            ShowTable("full"),
        ],
    )
    assert haproxy[2].value.endswith(b"\r\n\r\ncnt=")


def test_gpc_and_gpt_arrays_with_sc_inc_gpc_and_sc_set_gpt(pair):
    assert_same(
        pair,
        [
            Send(2, src="127.0.0.2", port="GPCS", answer=True),
            Cli("set table gpcs key 127.0.0.3 data.gpc0 1"),
            Cli("set table gpcs key 127.0.0.4 data.gpc(0) 1"),
            Send(1, src="127.0.0.3", port="GPCS"),
            ShowTable("gpcs"),
        ],
    )


def test_deny_pages_on_keep_alive_and_a_blocklist_set_from_the_stats_socket(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(5, src="127.0.0.2", port="BLOCK", keepalive=True, answer=True),  # 200 x3, 429 x2
            Send(2, src="127.0.0.3", port="BLOCK", path="/admin", keepalive=True, answer=True),  # 403 page
            Cli("set table blocklist key 127.0.0.4 data.gpc0 1"),
            Send(1, src="127.0.0.4", port="BLOCK", answer=True),  # 403 with its own text
            Send(1, src="127.0.0.5", port="BLOCK"),
            ShowTable("blocklist"),
        ],
    )
    assert haproxy[3].value.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")


def test_sliding_window_rate_read_inside_the_next_periods(pair):
    """The previous period's count weighted by what remains of the current one, read
    where the value is constant for ~250 ms either side (the two processes' periods
    start a few milliseconds apart): 4 requests, then 4 x 1760/2000 and 4 x 710/2000."""

    def peek() -> Send:
        return Send(1, src="127.0.0.2", port="PEEK", answer=True)

    haproxy, _ = assert_same(
        pair,
        [
            Send(4, src="127.0.0.2", port="COUNT"),
            peek(),  # inside the first period: the count itself
            Wait(2200),  # ~240 ms into the second period
            peek(),
            ShowTable("count"),
            Wait(1000),  # ~1290 ms into it
            peek(),
            ShowTable("count"),
        ],
    )
    bodies = [o.value.rsplit(b"\r\n\r\n", 1)[1] for o in haproxy if isinstance(o.value, bytes)]
    # hand-computed: 4, then floor(4 x 1760/2000) = 3, then floor(4 x 710/2000) = 1 (+-250 ms of margin)
    assert bodies == [b"rate=4 cnt=4", b"rate=3 cnt=4", b"rate=1 cnt=4"]


def test_show_table_filters_set_and_clear(pair):
    assert_same(
        pair,
        [
            Send(3, src="127.0.0.6", port="BLOCK"),
            Send(1, src="127.0.0.7", port="BLOCK"),
            Cli("show table blocklist data.http_req_cnt gt 1"),
            Cli("show table blocklist data.http_req_cnt eq 1 data.gpc0 eq 0"),
            Cli("show table blocklist key 127.0.0.7"),
            Cli("set table blocklist key 127.0.0.9 data.gpc0 5 data.http_req_cnt 7"),
            Cli("show table blocklist key 127.0.0.9"),
            Cli("clear table blocklist key 127.0.0.7"),
            Cli("clear table blocklist data.gpc0 gt 4"),
            Cli("show table blocklist data.http_req_cnt ge 3"),
            Cli("show table"),
            Cli("show table nosuch"),
            Cli("show table blocklist data.nosuch gt 1"),
            Cli("show table blocklist key notanip"),
            Cli("set table blocklist key 127.0.0.8 data.conn_rate 3"),
            Cli("set table blocklist key 127.0.0.8"),
            Cli("clear table blocklist data.http_req_cnt"),
        ],
    )
