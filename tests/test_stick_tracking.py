"""Stick counter tracking along a connection's and a request's life (HAProxy 2.6 accounting)."""

import pytest
from twisted.internet.task import Clock

from minilb.rules.txn import Session, Txn
from minilb.stick import tracking
from minilb.stick.table import StickTable
from tests.support.stick import spec

#: every test on both implementations of the hot paths (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("stick_impl")

STORE = (
    "conn_cnt,conn_cur,conn_rate(10s),sess_cnt,sess_rate(10s),http_req_cnt,http_req_rate(10s),"
    "http_err_cnt,http_err_rate(10s),http_fail_cnt,http_fail_rate(10s),bytes_in_cnt,bytes_in_rate(10s),"
    "bytes_out_cnt,bytes_out_rate(10s)"
)


@pytest.fixture
def table():
    clock = Clock()
    clock.advance(100)
    return StickTable(spec("t", "ip", 100, 30_000, STORE), clock)


def key(table, ip="10.0.0.1"):
    return table.normalize_key(ip)


def value(table, name, ip="10.0.0.1"):
    return table.get(table.lookup(key(table, ip)), name)


def request(sess):
    return Txn(sess, "GET", b"/", "/", None, "1.1", [])


def test_connection_tracking_counts_connection_and_session(table):
    sess = Session(src="10.0.0.1")
    tr = tracking.track(sess, 0, table, key(table), tracking.PHASE_CONNECTION)
    assert sess.stkctr[0] is tr and not tr[2]  # (table, row, stream)
    assert (value(table, "conn_cnt"), value(table, "conn_cur"), value(table, "conn_rate")) == (1, 1, 1)
    assert value(table, "sess_cnt") == 0
    tracking.on_session_accept(sess)
    assert (value(table, "sess_cnt"), value(table, "sess_rate")) == (1, 1)
    # requests on this connection are counted when they start
    txn = request(sess)
    tracking.on_http_request(txn)
    tracking.on_txn_end(txn)  # connection-level tracker survives the request
    assert sess.stkctr[0] is tr
    assert value(table, "http_req_cnt") == 1
    tracking.on_session_end(sess)
    assert sess.stkctr == [None, None, None]
    assert value(table, "conn_cur") == 0 and value(table, "conn_cnt") == 1


def test_http_tracking_counts_the_current_request_and_ends_with_it(table):
    sess = Session(src="10.0.0.1")
    for n in (1, 2, 3):
        txn = request(sess)
        tracking.on_http_request(txn)  # nothing tracked yet: no effect
        tr = tracking.track(sess, 1, table, key(table), tracking.PHASE_HTTP)
        assert tr[2]
        assert value(table, "http_req_cnt") == n and value(table, "http_req_rate") == n
        assert value(table, "conn_cur") == 1
        tracking.on_txn_end(txn)
        assert sess.stkctr[1] is None
    # HAProxy counts a "connection" per tracked stream (each request)
    assert value(table, "conn_cnt") == 3 and value(table, "conn_cur") == 0


def test_content_tracking_ends_with_the_request(table):
    sess = Session(src="10.0.0.1")
    txn = request(sess)
    tracking.track(sess, 0, table, key(table), tracking.PHASE_CONTENT)
    assert value(table, "http_req_cnt") == 0
    tracking.on_http_request(txn)
    assert value(table, "http_req_cnt") == 1
    tracking.on_txn_end(txn)
    assert sess.stkctr[0] is None


def test_a_busy_slot_is_not_tracked_again(table):
    sess = Session(src="10.0.0.1")
    assert tracking.track(sess, 0, table, key(table)) is not None
    assert tracking.track(sess, 0, table, key(table, "10.0.0.2")) is None
    assert table.lookup(key(table, "10.0.0.2")) is None
    assert value(table, "conn_cnt") == 1


def test_two_slots_on_the_same_entry_count_twice(table):
    sess = Session(src="10.0.0.1")
    tracking.track(sess, 0, table, key(table), tracking.PHASE_CONNECTION)
    tracking.track(sess, 1, table, key(table), tracking.PHASE_HTTP)
    row = table.lookup(key(table))
    assert table.ref_count(row) == 2 and value(table, "conn_cur") == 2
    tracking.on_session_end(sess)
    assert table.ref_count(row) == 0 and value(table, "conn_cur") == 0


@pytest.mark.parametrize(
    "status, source, err, fail",
    [
        (200, "server", 0, 0),
        (400, "server", 1, 0),
        (401, "server", 1, 0),
        (404, "server", 1, 0),
        (407, "server", 1, 0),
        (499, "server", 1, 0),
        (500, "server", 0, 1),
        (501, "server", 0, 0),
        (502, "server", 0, 1),
        (503, "server", 0, 1),
        (505, "server", 0, 0),
        (403, "deny", 1, 0),
        (429, "deny", 1, 0),
        (404, "internal", 0, 0),
    ],
)
def test_http_errors_and_failures_as_haproxy_2_6_counts_them(table, status, source, err, fail):
    # statuses observed with haproxy 2.6.12: every 4xx from a server is an error (401 and
    # 407 too), 5xx but 501/505 a failure, a deny is an error, "http-request return" is neither
    sess = Session(src="10.0.0.1")
    txn = request(sess)
    tracking.track(sess, 0, table, key(table))
    tracking.on_http_response(txn, status, source)
    assert (value(table, "http_err_cnt"), value(table, "http_fail_cnt")) == (err, fail)
    assert (value(table, "http_err_rate"), value(table, "http_fail_rate")) == (err, fail)


def test_bytes_flow_into_counters_and_rates(table):
    sess = Session(src="10.0.0.1")
    tracking.track(sess, 0, table, key(table))
    tracking.on_bytes(sess, 85, 0)
    tracking.on_bytes(sess, 0, 2**33)
    assert value(table, "bytes_in_cnt") == 85 and value(table, "bytes_out_cnt") == 2**33
    assert value(table, "bytes_in_rate") == 85


def test_released_entries_expire_after_the_table_expire(table):
    clock = table.clock
    sess = Session(src="10.0.0.1")
    tracking.track(sess, 0, table, key(table))
    clock.advance(60)  # tracked: never expires
    assert table.expire_step(10) == 0
    tracking.on_session_end(sess)
    clock.advance(29.999)
    assert table.expire_step(10) == 0
    clock.advance(0.001)
    assert table.expire_step(10) == 1


def test_http_track_numbers_the_entry_twice(table):
    table.sync = True  # a table with peers
    sess = Session(src="10.0.0.1")
    tracking.track(sess, 0, table, key(table), tracking.PHASE_HTTP)
    # conn counters then http counters: two local updates, the entry holds the last id
    assert table.local_update == 2
    assert [uid for uid, _ in table.updates_after(0)] == [2]


def test_full_nopurge_table_tracks_nothing():
    table = StickTable(spec("t", "ip", 1, None, "conn_cnt", nopurge=True), Clock())
    a, b = Session(src="10.0.0.1"), Session(src="10.0.0.2")
    assert tracking.track(a, 0, table, key(table)) is not None
    assert tracking.track(b, 0, table, key(table, "10.0.0.2")) is None
    assert b.stkctr == [None, None, None]


# --------------------------------------------------------------------------- when entries are touched
# haproxy 2.6 (stream.h, session.h, stick_table.h): an entry expires `expire` ms after
# its last touch; tests/test_stick_expiry_haproxy.py compares the observable ones with it


def small(store="conn_cnt", expire=30_000, sync=False):
    clock = Clock()
    clock.advance(100)
    t = StickTable(spec("t", "ip", 100, expire, store), clock)
    t.sync = sync
    return t, clock


def remain(table, ip="10.0.0.1"):
    return table.entry(table.lookup(key(table, ip))).expire_in()


def test_tracking_touches_the_entry():
    table, clock = small()
    table.touch_local(table.get_or_create(key(table)))
    clock.advance(10)
    tracking.track(Session(src="10.0.0.1"), 0, table, key(table), tracking.PHASE_CONNECTION)
    assert remain(table) == 30_000


def test_counting_a_session_does_not_touch():
    table, clock = small("conn_cnt,sess_cnt,sess_rate(10s)", sync=True)
    sess = Session(src="10.0.0.1")
    tracking.track(sess, 0, table, key(table), tracking.PHASE_CONNECTION)
    ids = table.local_update
    clock.advance(2)
    tracking.on_session_accept(sess)
    assert value(table, "sess_cnt") == 1 and remain(table) == 28_000
    assert table.local_update == ids  # not renumbered either: the peers learn it with the next touch


REQUEST = lambda sess: tracking.on_http_request(request(sess))  # noqa: E731
ANSWER = {
    s: (lambda sess, s=s: tracking.on_http_response(request(sess), s, "server")) for s in (200, 404, 502)
}
BYTES = lambda sess: tracking.on_bytes(sess, 10, 20)  # noqa: E731


@pytest.mark.parametrize(
    "store, event, touched",
    [
        ("conn_cnt,http_req_cnt", REQUEST, True),
        ("conn_cnt,http_req_rate(10s)", REQUEST, True),
        ("conn_cnt,gpc0", REQUEST, False),
        ("conn_cnt,http_err_cnt", ANSWER[404], True),
        ("conn_cnt,http_err_rate(10s)", ANSWER[404], True),
        ("conn_cnt,http_fail_cnt", ANSWER[404], False),
        ("conn_cnt,http_fail_cnt", ANSWER[502], True),
        ("conn_cnt,http_fail_rate(10s)", ANSWER[502], True),
        ("conn_cnt,http_err_cnt", ANSWER[502], False),
        ("conn_cnt,http_err_cnt,http_fail_cnt", ANSWER[200], False),
        ("conn_cnt,bytes_in_cnt", BYTES, True),
        ("conn_cnt,bytes_out_rate(10s)", BYTES, True),
        ("conn_cnt,gpc0", BYTES, False),
    ],
)
def test_counting_touches_when_the_table_stores_the_counter(store, event, touched):
    # requests, errors (4xx), failures (5xx) and bytes touch the entry when the table
    # stores their counter or their rate, and only then (stkctr_inc_*_ctr)
    table, clock = small(store)
    sess = Session(src="10.0.0.1")
    tracking.track(sess, 0, table, key(table), tracking.PHASE_CONNECTION)
    clock.advance(2)
    event(sess)
    assert remain(table) == (30_000 if touched else 28_000)


@pytest.mark.parametrize("store, touched", [("conn_cnt,http_req_cnt", False), ("conn_cnt,conn_cur", True)])
def test_the_end_of_a_request_touches_only_a_table_storing_conn_cur(store, touched):
    table, clock = small(store)
    sess = Session(src="10.0.0.1")
    txn = request(sess)
    tracking.track(sess, 0, table, key(table), tracking.PHASE_HTTP)
    clock.advance(2)
    tracking.on_txn_end(txn)
    assert table.ref_count(table.lookup(key(table))) == 0
    assert remain(table) == (30_000 if touched else 28_000)


@pytest.mark.parametrize("store, kept", [("conn_cnt", False), ("conn_cnt,conn_cur", True)])
def test_an_entry_expired_while_tracked_goes_when_the_connection_ends(store, kept):
    table, clock = small(store, expire=1000)
    sess = Session(src="10.0.0.1")
    tracking.track(sess, 0, table, key(table), tracking.PHASE_CONNECTION)
    clock.advance(5)
    assert table.expire_step(10) == 0  # tracked: kept, whatever its expiry says
    assert remain(table) == 0 and len(table) == 1
    tracking.on_session_end(sess)
    # removed at once, unless the conn_cur decrement touched it first
    assert len(table) == (1 if kept else 0)
    if kept:
        assert remain(table) == 1000


def _state(table):
    return [(e.key_text, e.expire_in(), e.ref_count, e.update_id, e.wire_values()) for e in table.entries()]


@pytest.mark.parametrize("source", ["deny", "server", "internal"])
@pytest.mark.parametrize(
    "store, slots",
    [
        ("conn_cnt,http_err_cnt", (0,)),
        ("conn_cur,http_err_rate(10s)", (0,)),
        ("http_req_rate(10s)", (0,)),
        ("conn_cnt,http_err_cnt", (0, 1)),  # two trackers: the generic path
        ("conn_cnt,http_err_cnt", (1,)),
    ],
)
def test_txn_done_does_what_the_response_and_end_hooks_do(store, slots, source):
    # on_txn_done(txn, status, source) == on_http_response (for a deny) + on_txn_end,
    # short path (sc0 alone) or not: same counters, expiry, references and ids
    states = []
    for combined in (False, True):
        table, clock = small(store, sync=True, expire=1000)
        sess = Session(src="10.0.0.1")
        for slot in slots:
            tracking.track(sess, slot, table, key(table, f"10.0.0.{slot + 1}"), tracking.PHASE_HTTP)
        clock.advance(2)
        txn = request(sess)
        if combined:
            tracking.on_txn_done(txn, 429, source)
        else:
            if source == "deny":
                tracking.on_http_response(txn, 429, source)
            tracking.on_txn_end(txn)
        assert sess.stkctr == [None, None, None]
        states.append((_state(table), table.local_update))
    assert states[0] == states[1]
    if source == "deny" and "http_err" in store:
        assert any(v.get("http_err_cnt") == 1 or v.get("http_err_rate") for _, _, _, _, v in states[1][0])
