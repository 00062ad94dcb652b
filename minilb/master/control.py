"""Owns the values shared by the master and its workers: the listening sockets a
configuration needs (keyed so that a reload finds the same socket again), the
mapping of those keys to inherited fd numbers, the control-channel lines and their
length limit, and the master CLI's ``show proc`` text.

Pure: no sockets, no Twisted.

A *listener key* names one listening socket by what makes it distinct to the
kernel: family, host, port and the IPv6 options for TCP, the path and mode for a
UNIX socket.  A frontend ``bind``, a ``stats socket`` and a peers section's local
address with equal keys would be one socket, which the configuration check
already refuses; TLS options are not part of the key (TLS runs in the worker).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import attrs

from minilb.config.model import Address, Config

#: the longest control-channel line, in either direction (bytes, newline excluded)
MAX_CONTROL_LINE = 4096

# master -> worker
SOFT_STOP = "soft-stop"
HARD_STOP = "hard-stop"
# worker -> master
READY = "ready"


class ControlLineTooLong(Exception):
    """A control-channel line passed `MAX_CONTROL_LINE`: the channel is broken."""


class LineBuffer:
    """Newline-delimited lines out of a byte stream, each at most ``limit`` bytes."""

    def __init__(self, limit: int = MAX_CONTROL_LINE):
        self.limit = limit
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        buf = self._pending + data
        *lines, self._pending = buf.split(b"\n")
        if len(self._pending) > self.limit or any(len(line) > self.limit for line in lines):
            self._pending = b""
            raise ControlLineTooLong(f"control line longer than {self.limit} bytes")
        return [line.rstrip(b"\r").decode("utf-8", "replace") for line in lines]


def control_line(text: str) -> bytes:
    """One control line, refusing newlines inside and over-long text."""
    data = text.encode("utf-8")
    if b"\n" in data or len(data) > MAX_CONTROL_LINE:
        raise ValueError("invalid control line")
    return data + b"\n"


# --------------------------------------------------------------------------- listeners


@attrs.frozen
class ListenerSpec:
    """One listening socket the master owns for its workers."""

    key: str
    address: Address
    v6only: bool = False
    v4v6: bool = False
    mode: int | None = None  # UNIX socket permissions


def listener_key(address: Address, *, v6only: bool = False, v4v6: bool = False, mode=None) -> str:
    if address.is_inet:
        return f"{address.family}:[{address.host}]:{address.port}:v6only={int(v6only)}:v4v6={int(v4v6)}"
    if address.family == "unix":
        return f"unix:{address.path}:mode={mode if mode is None else oct(mode)}"
    if address.family == "abns":
        return f"abns:{address.path}"
    if address.family == "fd":
        return f"fd:{address.fd}"
    return f"{address.family}:{address.text}"


def _spec(address: Address, *, v6only=False, v4v6=False, mode=None) -> ListenerSpec:
    key = listener_key(address, v6only=v6only, v4v6=v4v6, mode=mode)
    return ListenerSpec(key, address, v6only, v4v6, mode)


def bind_spec(bind) -> ListenerSpec:
    """The listener of a frontend ``bind`` line or a peers section's local address."""
    return _spec(bind.address, v6only=bind.v6only, v4v6=bind.v4v6, mode=bind.mode)


def stats_spec(sock) -> ListenerSpec:
    mode = sock.mode if sock.mode is not None else 0o666
    return _spec(sock.address, mode=mode)


def frontend_binds(config: Config) -> Iterator:
    for proxy in config.proxies:
        if proxy.is_frontend and not proxy.disabled:
            yield from proxy.binds


def peers_binds(config: Config) -> Iterator:
    for section in config.peers:
        if section.bind is not None and not section.disabled:
            yield section.bind


def listener_specs(config: Config) -> dict[str, ListenerSpec]:
    """Every listening socket of ``config`` by key, in configuration order."""
    specs: dict[str, ListenerSpec] = {}
    for bind in frontend_binds(config):
        spec = bind_spec(bind)
        specs.setdefault(spec.key, spec)
    for sock in config.global_.stats_sockets:
        if sock.address.is_inet or sock.address.family == "unix":
            spec = stats_spec(sock)
            specs.setdefault(spec.key, spec)
    for bind in peers_binds(config):
        spec = bind_spec(bind)
        specs.setdefault(spec.key, spec)
    return specs


def encode_fd_map(fds: dict[str, int]) -> str:
    """The worker's ``--fds`` argument: listener key -> inherited fd number."""
    return json.dumps(fds, sort_keys=True, separators=(",", ":"))


def decode_fd_map(text: str) -> dict[str, int]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"invalid fd map: {exc}") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in value.items()
    ):
        raise ValueError("invalid fd map: expected an object of key -> fd number")
    return value


# --------------------------------------------------------------------------- master CLI


def uptime_text(seconds: float) -> str:
    s = max(int(seconds), 0)
    return f"{s // 86400}d{s // 3600 % 24:02d}h{s // 60 % 60:02d}m{s % 60:02d}s"


@attrs.frozen
class ProcRow:
    pid: int | None
    kind: str  # "master" | "worker"
    reloads: str  # the master: "N [failed: F]"; a worker: the reloads it survived
    uptime_s: float
    version: str


def show_proc(master: ProcRow, workers: list[ProcRow], old_workers: list[ProcRow]) -> str:
    """``show proc`` in HAProxy 2.6's layout (management.txt 9.4.1)."""

    def row(r: ProcRow) -> str:
        pid = "-" if r.pid is None else str(r.pid)
        return f"{pid:<16}{r.kind:<16}{r.reloads:<16}{uptime_text(r.uptime_s):<16}{r.version}\n"

    out = ["#<PID>          <type>          <reloads>       <uptime>        <version>\n"]
    out.append(row(master))
    out.append("# workers\n")
    out.extend(row(w) for w in workers)
    out.append("# old workers\n")
    out.extend(row(w) for w in old_workers)
    out.append("# programs\n\n")
    return "".join(out)
