"""Owns stick-counter tracking per session: which entry each of ``sc0..sc2`` follows
and the counting HAProxy 2.6 does along a connection's and a request's life.

A tracked stick counter sits in ``Session.stkctr[i]`` (`minilb.rules.txn`) as a
`Tracker`: the plain tuple ``(table, row, stream)`` (the table, the entry's row, and
whether it ends with the request rather than with the connection), a tuple because
one is made per tracked request.  The adapters call:

- `track(sess, slot, table, key, phase)` from ``track-scN`` actions.  Like
  HAProxy's ``stream_track_stkctr`` every track counts ``conn_cnt``, ``conn_cur``
  (+1) and ``conn_rate``; an ``http-request`` track also counts the current request
  (``http_req_cnt``/``http_req_rate``) so later rules see it.  A slot already
  tracking something is left alone.  ``tcp-request connection`` trackers live as
  long as the connection; the others (``http-request``, ``tcp-request content``)
  end with the request (HTTP streams are per request in HAProxy 2.6).
- `on_session_accept(sess)` once the ``tcp-request connection`` rules accepted the
  connection: ``sess_cnt``/``sess_rate`` of the connection trackers (without a
  touch, as HAProxy's ``session_count_new``).
- `on_http_request(txn)` when a request starts, before ``http-request`` rules:
  ``http_req_cnt``/``http_req_rate`` of counters tracked earlier.
- `on_http_response(txn, status, source)`: ``http_err`` for 4xx answered by a
  server (401 and 407 included, as HAProxy 2.6 does) and for denied/tarpitted
  requests; ``http_fail`` for 5xx other than 501 and 505 from a server.
- `on_http_denied(txn)`: the same for a deny decided by the rules.
- `on_bytes(sess, bytes_in, bytes_out)`: ``bytes_in/out_cnt`` and rates.
- `on_txn_end(txn)`: releases the request-level trackers (see `StickTable.release`).
- `on_txn_done(txn, status, source)`: the deny's ``http_err`` then `on_txn_end`, in
  one call (a request whose bytes are not counted).
- `on_session_end(sess)`: releases every remaining tracker.

Expiry follows HAProxy 2.6: an entry expires ``expire`` ms after its last *touch*.
Starting to track touches it, and so does counting a request, an error, a failure
or bytes when the table stores that counter; counting a session does not, and the
release at the end touches only when the table stores ``conn_cur`` (which it
decrements).  An entry whose expiry passed while it was tracked is removed when
its last tracker releases it.
"""

from __future__ import annotations

from typing import Any

from minilb.stick import counters
from minilb.stick.table import StickTable

MASK32 = 0xFFFFFFFF

#: phases a track-sc rule can run in
PHASE_CONNECTION = "connection"  # tcp-request connection: lives with the connection
PHASE_CONTENT = "content"  # tcp-request content: ends with the stream (request)
PHASE_HTTP = "http"  # http-request: ends with the request


#: ``(table, row, stream)``: see the module docstring
Tracker = tuple


def _count(table: StickTable, row: int, cnt_name: str, rate_name: str, inc: int = 1) -> bool:
    """Add ``inc`` to a counter and its rate when stored; True if either is."""
    cols = table._c
    cnt = cols[cnt_name]
    rate = cols[rate_name]
    if cnt is not None:
        arr = cnt.arrays[0]
        if cnt.dt.kind == "u64":
            arr[row] = (arr[row] + inc) & 0xFFFFFFFFFFFFFFFF
        else:
            arr[row] = (arr[row] + inc) & MASK32
    if rate is not None:
        t, c, p = rate.arrays
        t[row], c[row], p[row] = counters.increment(
            t[row], c[row], p[row], table.now_tick(), rate.period, inc
        )
    return cnt is not None or rate is not None


def track(sess: Any, slot: int, table: StickTable, key: Any, phase: str = PHASE_HTTP) -> Tracker | None:
    """Start tracking ``key`` (already normalised for ``table``) in ``sess.stkctr[slot]``.

    Returns the tracker, or None when the slot was already tracking something or
    the table is full (the rule then does nothing, as in HAProxy).
    """
    stkctr = sess.stkctr
    if stkctr[slot] is not None:
        return None
    row = table._track(key, phase == PHASE_HTTP)  # track_key (see StickTable.__init__)
    if row is None:
        return None
    tracker = stkctr[slot] = (table, row, phase != PHASE_CONNECTION)
    return tracker


def _each(sess: Any):
    for tracker in sess.stkctr:
        if tracker is not None:
            yield tracker


def on_session_accept(sess: Any) -> None:
    """The tcp-request connection rules accepted the connection: count a session."""
    for table, row, _ in _each(sess):
        _count(table, row, "sess_cnt", "sess_rate")


def on_http_request(txn: Any) -> None:
    """A new request starts: count it on every counter already tracked."""
    for table, row, _ in _each(txn.sess):
        if _count(table, row, "http_req_cnt", "http_req_rate"):
            table.touch_local(row)


def is_http_error(status: int) -> bool:
    """What HAProxy 2.6 counts in http_err_cnt for a server response: any 4xx."""
    return 400 <= status <= 499


def is_http_failure(status: int) -> bool:
    """What HAProxy 2.6 counts in http_fail_cnt: 5xx except 501 and 505."""
    return 500 <= status <= 599 and status not in (501, 505)


def on_http_response(txn: Any, status: int, source: str = "server") -> None:
    """Account a response: ``source`` is "server" (a response from a server, or
    HAProxy's own 502/504 for a failed one; its own 503s count nothing), "deny" (deny/tarpit/auth
    failure: always an error) or "internal" (http-request return/redirect:
    not counted)."""
    if source == "deny":
        err = True
        fail = False
    elif source == "server":
        err = is_http_error(status)
        fail = is_http_failure(status)
    else:
        return
    if not (err or fail):
        return
    for table, row, _ in _each(txn.sess):
        if err:
            changed = _count(table, row, "http_err_cnt", "http_err_rate")
        else:
            changed = _count(table, row, "http_fail_cnt", "http_fail_rate")
        if changed:
            table.touch_local(row)


def on_http_denied(txn: Any) -> None:
    """A deny/tarpit/auth failure answered the request: count an http error (what
    ``on_http_response(txn, status, "deny")`` does)."""
    on_http_response(txn, 0, "deny")


def on_bytes(sess: Any, bytes_in: int, bytes_out: int) -> None:
    """Bytes received from the client (``bytes_in``) and sent to it (``bytes_out``)."""
    for table, row, _ in _each(sess):
        changed = False
        if bytes_in:
            changed = _count(table, row, "bytes_in_cnt", "bytes_in_rate", bytes_in)
        if bytes_out:
            changed = _count(table, row, "bytes_out_cnt", "bytes_out_rate", bytes_out) or changed
        if changed:
            table.touch_local(row)


def on_txn_end(txn: Any) -> None:
    """The request is over: stop the request-level trackers."""
    stkctr = txn.sess.stkctr
    for slot, tr in enumerate(stkctr):
        if tr is not None and tr[2]:
            stkctr[slot] = None
            tr[0].release(tr[1], True)


def on_txn_done(txn: Any, status: int, source: str) -> None:
    """What ``on_http_response(txn, status, "deny")`` (only when ``source`` is
    "deny": a server's status was counted when it came) then ``on_txn_end(txn)``
    do, in one call: the end of a request whose bytes are not counted.  A request
    tracked by ``sc0`` alone (the common case) takes a short path doing the same."""
    stkctr = txn.sess.stkctr
    tr = stkctr[0]
    if tr is not None and tr[2] and stkctr[1] is None and stkctr[2] is None:
        table, row, _ = tr
        if source == "deny" and table._counts_http_err:
            _count(table, row, "http_err_cnt", "http_err_rate")
            table.touch_local(row)
        stkctr[0] = None
        table.release(row, True)
        return
    if source == "deny":
        on_http_response(txn, status, source)
    on_txn_end(txn)


def on_session_end(sess: Any) -> None:
    """The connection is closed: stop every tracker so the entries can expire."""
    stkctr = sess.stkctr
    for slot, tr in enumerate(stkctr):
        if tr is not None:
            stkctr[slot] = None
            tr[0].release(tr[1], True)
