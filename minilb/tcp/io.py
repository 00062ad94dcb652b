"""Owns the write path of proxied connections: send at once when nothing is queued.

Twisted's ``transport.write`` always queues the bytes and asks the reactor to watch
the socket for writability; the bytes leave on the next loop turn, after two
``epoll_ctl`` calls and a wake-up.  A proxy writes once or twice per request on each
side, so that is a large share of its time.  `direct_writer(transport)` returns a
``write(data)`` that, like asyncio's transports, first tries ``socket.send`` when
the transport has nothing queued, and hands whatever the kernel did not take to
``transport.write`` (which then buffers it, pauses producers past its buffer size,
and reports errors as usual).  Transports other than plain TCP (TLS, unix, test
fakes) get their own ``write``.
"""

from __future__ import annotations

from twisted.internet import tcp


def direct_writer(transport):
    if not isinstance(transport, tcp.Connection) or getattr(transport, "TLS", False):
        return transport.write
    send = transport.socket.send
    queued_write = transport.write

    def write(data: bytes) -> None:
        t = transport
        if not t._tempDataLen and t.offset == len(t.dataBuffer) and t.connected and not t.disconnecting:
            try:
                sent = send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # let Twisted's own write path meet (and report) the error
            if sent == len(data):
                return
            if sent:
                data = data[sent:]
        queued_write(data)

    return write
