"""Owns traffic log lines: HAProxy's ``option httplog`` and ``option tcplog`` formats,
the short "Connect from" line of proxies without either, and where lines go.

`make_sink(targets, global_targets, clock)` returns None when a proxy logs nowhere,
so that the data path pays nothing for logging; otherwise a `LogSink` whose
``emit(message)`` formats the syslog header per target (``format raw`` prints the
message alone, the default ``rfc3164`` prefixes ``<PRI>Mmm dd hh:mm:ss haproxy[pid]:``)
and writes to stdout/stderr or sends a UDP syslog datagram.  Stream writes are
batched: one write per reactor turn, not one per request.

Line formats (HAProxy 2.6, configuration.txt 8.2.3 and 8.2.2)::

  httplog: %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r
  tcplog:  %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq
"""

from __future__ import annotations

import os
import socket
import time

FACILITIES = {
    name: code
    for code, name in enumerate(
        "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2".split()
        + [f"local{i}" for i in range(8)]
    )
}
LEVELS = {name: code for code, name in enumerate("emerg alert crit err warning notice info debug".split())}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_date_cache: list = [None, ""]


def log_date(t: float) -> str:
    """``21/Nov/2026:11:29:48.457`` (local time, milliseconds), as HAProxy's %tr/%t."""
    sec = int(t)
    if _date_cache[0] != sec:
        tm = time.localtime(sec)
        _date_cache[0] = sec
        _date_cache[1] = (
            f"{tm.tm_mday:02d}/{_MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
        )
    return f"{_date_cache[1]}.{int((t - sec) * 1000):03d}"


def _ms(start: float | None, end: float | None) -> int:
    if start is None or end is None:
        return -1
    return int((end - start) * 1000)


def format_httplog(
    *,
    src: str,
    src_port: int,
    accept_time: float,
    frontend: str,
    backend: str,
    server: str,
    t_request: int,
    t_queue: int,
    t_connect: int,
    t_response: int,
    t_active: int,
    status: int,
    bytes_out: int,
    termination: str,
    actconn: int,
    feconn: int,
    beconn: int,
    srvconn: int,
    retries: int,
    request_line: str,
    ssl: bool = False,
) -> str:
    """One ``option httplog`` line (without the syslog header)."""
    ft = frontend + "~" if ssl else frontend
    return (
        f"{src}:{src_port} [{log_date(accept_time)}] {ft} {backend}/{server} "
        f"{t_request}/{t_queue}/{t_connect}/{t_response}/{t_active} {status} {bytes_out} - - {termination} "
        f'{actconn}/{feconn}/{beconn}/{srvconn}/{retries} 0/0 "{request_line}"'
    )


def format_tcplog(
    *,
    src: str,
    src_port: int,
    accept_time: float,
    frontend: str,
    backend: str,
    server: str,
    t_queue: int,
    t_connect: int,
    t_total: int,
    bytes_out: int,
    termination: str,
    actconn: int,
    feconn: int,
    beconn: int,
    srvconn: int,
    retries: int,
) -> str:
    """One ``option tcplog`` line (without the syslog header)."""
    return (
        f"{src}:{src_port} [{log_date(accept_time)}] {frontend} {backend}/{server} "
        f"{t_queue}/{t_connect}/{t_total} {bytes_out} {termination} "
        f"{actconn}/{feconn}/{beconn}/{srvconn}/{retries} 0/0"
    )


def format_connect(src: str, src_port: int, dst: str, dst_port: int, frontend: str, mode: str) -> str:
    """The line HAProxy logs per connection when a proxy has neither httplog nor tcplog."""
    return f"Connect from {src}:{src_port} to {dst}:{dst_port} ({frontend}/{mode.upper()})"


class _StreamTarget:
    """stdout / stderr: lines collected and written once per reactor turn."""

    def __init__(self, fd: int, fmt: str, pri: int, scheduler):
        self.fd = fd
        self.fmt = fmt
        self.pri = pri
        self.scheduler = scheduler
        self.pending: list[str] = []
        self.scheduled = False

    def emit(self, message: str, pri: int) -> None:
        if self.fmt != "raw":
            message = _rfc3164_header(pri) + message
        self.pending.append(message)
        if len(self.pending) >= 256:
            self.flush()
        elif not self.scheduled:
            self.scheduled = True
            self.scheduler(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        pending, self.pending = self.pending, []
        if not pending:
            return
        data = ("\n".join(pending) + "\n").encode("utf-8", "replace")
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except (BlockingIOError, OSError):
            pass  # a full or closed log pipe loses lines rather than stalling traffic


class _UdpTarget:
    def __init__(self, host: str, port: int, fmt: str):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.addr = (host, port)
        self.fmt = fmt

    def emit(self, message: str, pri: int) -> None:
        if self.fmt != "raw":
            message = _rfc3164_header(pri) + message
        try:
            self.sock.sendto(message.encode("utf-8", "replace"), self.addr)
        except OSError:
            pass

    def flush(self) -> None:
        pass


_PID = os.getpid()
_hdr_cache: dict[tuple[int, int], str] = {}


def _rfc3164_header(pri: int) -> str:
    now = int(time.time())
    key = (pri, now)
    hdr = _hdr_cache.get(key)
    if hdr is None:
        _hdr_cache.clear()
        tm = time.localtime(now)
        hdr = _hdr_cache[key] = (
            f"<{pri}>{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} "
            f"haproxy[{_PID}]: "
        )
    return hdr


class LogSink:
    """Where one proxy's traffic lines go (one or more targets)."""

    def __init__(self, targets: list[tuple[object, int]]):
        self.targets = targets  # (target, pri for info level)

    def emit(self, message: str, level: str = "info") -> None:
        severity = LEVELS.get(level, 6)
        for target, facility_pri in self.targets:
            target.emit(message, facility_pri + severity)

    def flush(self) -> None:
        for target, _ in self.targets:
            target.flush()


_shared_streams: dict[tuple[int, str, int], _StreamTarget] = {}


def make_sink(targets, global_targets=(), scheduler=None) -> LogSink | None:
    """A sink for a proxy's ``log`` lines (``log global`` uses the global ones), or None.

    ``scheduler(fn)`` runs ``fn`` soon (``lambda f: reactor.callLater(0, f)``); without
    one, lines are written at once.
    """
    resolved = []
    for t in targets:
        if t.target == "global":
            resolved.extend(global_targets)
        else:
            resolved.append(t)
    out = []
    for t in resolved:
        fmt = t.format or "rfc3164"
        facility = FACILITIES.get(t.facility, 16) * 8
        if t.target in ("stdout", "stderr"):
            fd = 1 if t.target == "stdout" else 2
            key = (fd, fmt, facility)
            target = _shared_streams.get(key)
            if target is None or target.scheduler != scheduler:
                target = _StreamTarget(fd, fmt, facility, scheduler or (lambda f: f()))
                _shared_streams[key] = target
        else:
            host, port = _split_address(t.target)
            if host is None:
                continue  # unix-socket syslog targets are not supported: skip quietly
            target = _UdpTarget(host, port, fmt)
        out.append((target, facility))
    return LogSink(out) if out else None


def _split_address(text: str) -> tuple[str | None, int]:
    for prefix in ("udp@", "udp4@", "ipv4@"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if text.startswith(("udp6@", "ipv6@")):
        text = text.split("@", 1)[1]
    if text.startswith("/") or text.startswith("unix@"):
        return None, 0
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 514
        return host, port
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and host.count(":") == 0:
        return host, int(port)
    return text, 514


def flush_all() -> None:
    for target in _shared_streams.values():
        target.flush()
