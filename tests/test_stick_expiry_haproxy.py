"""When HAProxy 2.6 refreshes a stick-table entry's expiry, compared with real
HAProxy on one configuration (see `tests.support.conformance`): tracking touches
the entry, the end of a tracker touches it only when the table stores conn_cur,
and an entry whose expiry passed while it was tracked goes when it is released.

The comparison allows `EXP_TOLERANCE_MS` on ``exp=``, so each scenario holds its
connections for longer than that: a refresh at the wrong time shows.
"""

from __future__ import annotations

import pytest

from tests.conftest import requires_haproxy
from tests.support.conformance import Cli, Hold, Pair, Release, Send, ShowTable, Wait, assert_same
from tests.test_conformance_sticktables import HEADER

pytestmark = [pytest.mark.integration, pytest.mark.interop, requires_haproxy]


def tracked_at_accept(name: str, expire: str, store: str) -> str:
    """A frontend ``name`` (port ``@NAME@``) whose table tracks each connection's source."""
    return f"""
frontend {name}
    bind 127.0.0.1:@{name.upper()}@
    stick-table type ip size 100 expire {expire} store {store}
    tcp-request connection track-sc0 src
    http-request return status 200 content-type text/plain string ok
"""


CONFIG = (
    HEADER
    + tracked_at_accept("long", "10s", "conn_cnt")
    + tracked_at_accept("longreq", "10s", "conn_cnt,http_req_cnt")
    + tracked_at_accept("longcur", "10s", "conn_cnt,conn_cur")
    + tracked_at_accept("short", "1s", "conn_cnt,sess_cnt")
    + tracked_at_accept("shortcur", "1s", "conn_cnt,conn_cur")
    + """
frontend tarpitcur
    bind 127.0.0.1:@TARPITCUR@
    timeout tarpit 700ms
    stick-table type ip size 100 expire 10s store conn_cur,http_req_cnt,http_err_cnt
    http-request track-sc0 src
    http-request tarpit

frontend cli
    bind 127.0.0.1:@CLIFE@
    stick-table type ip size 100 expire 10s store gpc0
"""
)


@pytest.fixture(scope="module")
def pair():
    with Pair.start(CONFIG) as started:
        yield started


def held(port: str, table: str, held_ms: int, settle_ms: int = 300, after_ms: int = 700) -> list:
    """One connection from 127.0.0.2 tracked at accept, idle for ``held_ms``, closed;
    ``show table`` while it is held and ``after_ms`` after it closed."""
    return [
        Hold("idle", 1, src="127.0.0.2", port=port),
        Wait(held_ms),
        ShowTable(table),
        Release("idle", settle_ms=settle_ms),
        Wait(after_ms),
        ShowTable(table),
    ]


def test_a_held_connection_does_not_refresh_its_entry_nor_does_its_end(pair):
    # held: use=1 exp=8650, counting down while tracked; closed: use=0 exp=7650, the
    # release touched nothing
    assert_same(pair, held("LONG", "long", 1000))


def test_counting_a_request_touches_the_entry(pair):
    # an idle connection closed by its client counts as a request that never came
    # (http_req_cnt): a touch, since the table stores it: exp=8650 held, 8950 closed
    assert_same(pair, held("LONGREQ", "longreq", 1000))


def test_the_end_of_a_tracker_touches_a_table_storing_conn_cur(pair):
    # held: use=1 exp=8650 conn_cur=1; closed: use=0 exp=8950 conn_cur=0
    assert_same(pair, held("LONGCUR", "longcur", 1000))


def test_an_entry_expired_while_tracked_goes_at_its_release(pair):
    # held: use=1 exp=0, expired but kept while tracked; closed: gone
    assert_same(pair, held("SHORT", "short", 1500, after_ms=0))


def test_an_entry_expired_while_tracked_survives_a_conn_cur_touch(pair):
    # held: use=1 exp=0 conn_cur=1; closed: use=0 exp=850 conn_cur=0 (the release touched it)
    assert_same(pair, held("SHORTCUR", "shortcur", 1500, settle_ms=100, after_ms=0))


def test_a_tarpit_ending_touches_a_table_storing_conn_cur(pair):
    haproxy, _ = assert_same(
        pair,
        [
            Send(1, src="127.0.0.2", port="TARPITCUR", answer=True),
            Wait(600),
            ShowTable("tarpitcur"),  # exp=9350: touched when the tarpit answered
        ],
    )
    assert haproxy[0].value.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")


def test_set_table_touches_the_entry(pair):
    assert_same(
        pair,
        [
            Cli("set table cli key 10.0.0.1 data.gpc0 3"),
            Wait(1000),
            Cli("set table cli key 10.0.0.1 data.gpc0 4"),
            Wait(600),
            ShowTable("cli"),  # exp=9350: the second set touched it
        ],
    )
