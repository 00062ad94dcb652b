"""Property tests of the client-side protocol: however requests and responses are cut
into reads, every request reaches the server once, in order, every answer comes back
in order, and no connection count leaks."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.http import Harness

REQUESTS = [
    b"GET /0 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"GET /3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"HEAD /4 HTTP/1.1\r\n\r\n",
]
RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nR0",
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nR1\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nR3",
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
]


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    order=st.permutations(range(len(REQUESTS))),
    client_cuts=st.lists(st.integers(0, 10_000), max_size=12),
    server_cuts=st.lists(st.integers(0, 200), max_size=4),
)
def test_any_read_boundaries_give_the_same_exchange(order, client_cuts, server_cuts):
    h = Harness()
    c, ct = h.client()
    stream = b"".join(REQUESTS[i] for i in order)
    for piece in cut(stream, client_cuts):
        c.dataReceived(piece)
    seen_paths = []
    conn = st_transport = None
    for i in order:
        if h.connector.attempts:
            conn, st_transport = h.connector.succeed()
        assert conn is not None
        sent = st_transport.value()
        st_transport.clear()
        seen_paths.append(sent.split(b" ", 2)[1])
        for piece in cut(RESPONSES[i], server_cuts):
            conn.dataReceived(piece)
        if conn.transport.disconnecting:  # HEAD answers end the server connection
            conn.connectionLost(None)
    assert seen_paths == [b"/%d" % i for i in order]
    out = ct.value()
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", out)]
    expected = [int(RESPONSES[i].split(b" ")[1]) for i in order]
    assert statuses == expected
    assert not ct.disconnecting
    assert h.server().cur_conns == 0 and h.backend().cur_conns == 0
    c.connectionLost(None)
    assert h.fe.cur_conns == 0


#: the random-order test also ends its request stream with an upgrade, and servers
#: may answer 101 (then bytes flow as a tunnel)
CHAOS_REQUESTS = REQUESTS + [b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes"]
CHAOS_RESPONSES = RESPONSES + [
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nws"
]

ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("client"), st.integers(0, len(REQUESTS) - 1), st.integers(1, 40)),
        st.tuples(st.just("connect"), st.booleans(), st.just(0)),
        st.tuples(st.just("server"), st.integers(0, len(CHAOS_RESPONSES) - 1), st.integers(1, 120)),
        st.tuples(st.just("server_close"), st.just(0), st.just(0)),
        st.tuples(st.just("client_close"), st.just(0), st.just(0)),
        st.tuples(st.just("tick"), st.integers(1, 40), st.just(0)),
        st.tuples(st.just("garbage"), st.just(0), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(actions=ACTIONS)
def test_random_event_orders_never_raise_and_never_leak(actions):
    from minilb.config.model import Timeouts
    from tests.support.http import proxy, server_model

    px = proxy(
        servers=[server_model()],
        retries=1,
        timeouts=Timeouts(connect=1000, client=3000, server=2000, http_request=2000, http_keep_alive=1000),
    )
    h = Harness(px)
    errors = []
    h.fe.errlog = errors.append
    c, ct = h.client()
    conns = []  # (ServerConnection, transport)
    client_buffer = b"".join(CHAOS_REQUESTS)
    for kind, a, b in actions:
        if kind == "client" and not ct.disconnecting:
            piece, client_buffer = client_buffer[:b], client_buffer[b:]
            if piece:
                c.dataReceived(piece)
        elif kind == "connect" and h.connector.attempts:
            if a:
                conns.append(h.connector.succeed(0))
            else:
                h.connector.fail(0)
        elif kind == "server" and conns:
            conn, transport = conns[-1]
            if conn.connected and not transport.disconnecting:
                conn.dataReceived(CHAOS_RESPONSES[a][:b])
        elif kind == "server_close" and conns:
            conn, transport = conns.pop()
            if conn.connected:
                conn.connectionLost(None)
        elif kind == "client_close":
            c.connectionLost(None)
            break
        elif kind == "tick":
            h.reactor.advance(a / 10)
        elif kind == "garbage" and not ct.disconnecting:
            c.dataReceived(b"\x00\x01garbage\r\n\r\n")
        for conn, transport in conns:
            if transport.disconnecting and conn.connected:
                conn.connectionLost(None)
    if c.open or not ct.disconnecting:
        c.connectionLost(None)
    elif c in h.fe.connections:
        c.connectionLost(None)
    while h.connector.attempts:
        h.connector.succeed(0)
    for conn, _ in conns:
        if conn.connected:
            conn.connectionLost(None)
    assert h.fe.cur_conns == 0
    assert h.server().cur_conns == 0 and h.backend().cur_conns == 0
    assert not [e for e in errors if "internal error" in e]
