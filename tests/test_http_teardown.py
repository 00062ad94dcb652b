"""A finished HTTP connection (client side and server side) is freed by reference
counting as soon as it is closed: parser, timer and protocol let go of each other,
so a busy proxy does not leave every connection to the cycle collector."""

from __future__ import annotations

import gc
import weakref

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from tests.support.http import Harness

DONE = Failure(ConnectionDone())


def test_a_closed_client_and_server_connection_are_freed_without_the_cycle_collector():
    gc.collect()
    gc.disable()
    try:
        h = Harness()
        c, ct = h.client()
        c.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        conn, st = h.connector.succeed()
        conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        assert ct.value().endswith(b"\r\n\r\nhi") and ct.disconnecting
        assert h.backend().pools["s1"].idle == [conn]
        refs = [weakref.ref(c), weakref.ref(conn)]
        # no weak references to these (slots): known by identity and type
        slotted = {(id(o), type(o)) for o in (c.parser, c.timer, c.sess, conn.parser, conn.timer)}
        c.connectionLost(DONE)  # the client side closed (as the transport reports it)
        conn.close()  # the pooled server connection is dropped later (idle timeout, purge)
        assert st.disconnecting
        conn.connectionLost(DONE)
        assert h.backend().pools["s1"].idle == []
        del c, ct, conn, st
        alive = [r() for r in refs if r() is not None]
        assert alive == []
        assert [o for o in gc.get_objects() if (id(o), type(o)) in slotted] == []
    finally:
        gc.enable()


def test_the_closed_connection_still_answers_late_calls_harmlessly():
    """After connectionLost, a timer armed again or bytes fed by mistake do nothing."""
    h = Harness()
    c, ct = h.client()
    c.connectionLost(DONE)
    c.timer.arm(0.5, "idle")
    h.reactor.advance(1)
    assert ct.value() == b""


def test_an_idle_connection_closed_by_its_idle_timeout_leaves_the_pool_at_once():
    from minilb.http.backend import POOL_IDLE_SECONDS

    h = Harness()
    c, ct = h.client()
    c.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    conn, st = h.connector.succeed()
    conn.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    pool = h.backend().pools["s1"]
    assert pool.idle == [conn]
    h.reactor.advance(30 + POOL_IDLE_SECONDS)  # the server timeout armed for the request bounds the idle time
    assert st.disconnecting
    assert pool.idle == []  # not left behind until the transport reports the close
    conn.connectionLost(DONE)
    assert pool.idle == []
