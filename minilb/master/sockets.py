"""Owns the master's listening sockets: bound once, handed to every worker, reused
across reloads for an unchanged listener key, closed once no worker needs them.

`Listeners(binder)` keeps ``key -> socket``; `prepare(specs)` binds what is missing
(all or nothing: a failure closes what this call bound and raises `OSError`);
`release(keep)` closes every socket whose key is not in ``keep``.  The binder is
injected (`bind_listener` in production, a fake in the unit tests).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable

from minilb.master.control import ListenerSpec
from minilb.net.endpoints import bound_inet_socket, bound_unix_socket, resolve_listen_host

BACKLOG = 1024


def bind_listener(spec: ListenerSpec) -> socket.socket:
    """A listening, non-blocking socket for ``spec`` (HAProxy's options: SO_REUSEPORT,
    atomic replacement of UNIX socket files)."""
    address = spec.address
    if address.is_inet:
        if address.port is None:
            raise OSError(f"missing port in bind address '{address}'")
        interface, family = resolve_listen_host(address)
        return bound_inet_socket(interface, address.port, family, spec.v6only, spec.v4v6, BACKLOG)
    if address.family == "unix":
        return bound_unix_socket(address.path, spec.mode, BACKLOG)
    if address.family == "abns":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind("\0" + address.path)
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock
    if address.family == "fd" and address.fd is not None:
        # a socket the master itself inherited: hand a duplicate down
        return socket.socket(fileno=os.dup(address.fd))
    raise OSError(f"unsupported address family '{address.family}' for '{address}'")


class Listeners:
    def __init__(self, binder: Callable[[ListenerSpec], socket.socket] = bind_listener):
        self._binder = binder
        self.sockets: dict[str, socket.socket] = {}

    def prepare(self, specs: Iterable[ListenerSpec]) -> list[str]:
        """Bind every spec not held yet; returns the keys bound by this call."""
        added: list[str] = []
        try:
            for spec in specs:
                if spec.key not in self.sockets:
                    self.sockets[spec.key] = self._binder(spec)
                    added.append(spec.key)
        except OSError:
            for key in added:
                self.sockets.pop(key).close()
            raise
        return added

    def fileno(self, key: str) -> int:
        return self.sockets[key].fileno()

    def release(self, keep: Iterable[str]) -> list[str]:
        """Close the sockets whose key is not in ``keep``; returns their keys."""
        wanted = set(keep)
        gone = [key for key in self.sockets if key not in wanted]
        for key in gone:
            self.sockets.pop(key).close()
        return gone

    def close_all(self) -> None:
        self.release(())
