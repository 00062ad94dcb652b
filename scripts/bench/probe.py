"""A tiny blocking HTTP/1.1 client that checks a system under test before it is measured: the status of
each response, its body, and whether the connection stayed open for the next request.
"""

from __future__ import annotations

import socket
from typing import BinaryIO

import attrs

MAX_HEADER_LINES = 100
MAX_LINE_BYTES = 8192
MAX_BODY_BYTES = 4 * 1024 * 1024


class ProbeError(Exception):
    """The peer answered something that is not a well-formed HTTP/1.x response, or nothing at all."""


@attrs.frozen
class ProbeResponse:
    status: int
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes

    @property
    def asks_close(self) -> bool:
        return "close" in self.headers.get("connection", "").lower()


@attrs.frozen
class ProbeResult:
    responses: tuple[ProbeResponse, ...]
    kept_alive: bool  # every response arrived on the one connection, none asked to close
    error: str | None = None

    @property
    def statuses(self) -> tuple[int, ...]:
        return tuple(response.status for response in self.responses)


def _read_line(stream: BinaryIO) -> bytes:
    line = stream.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES:
        raise ProbeError("response line too long")
    return line


def read_response(stream: BinaryIO, *, head_request: bool = False) -> ProbeResponse:
    """Read one response (Content-Length, chunked, or until close) from a buffered byte stream."""
    status_line = _read_line(stream)
    if not status_line:
        raise ProbeError("connection closed before a response")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProbeError(f"bad status line {status_line[:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = _read_line(stream)
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise ProbeError("connection closed inside the headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProbeError(f"bad header line {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    else:
        raise ProbeError("too many header lines")
    if head_request or status in (204, 304) or 100 <= status < 200:
        return ProbeResponse(status, headers, b"")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(stream)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if length > MAX_BODY_BYTES:
            raise ProbeError(f"body of {length} bytes is over the probe's limit")
        body = stream.read(length)
        if len(body) != length:
            raise ProbeError(f"connection closed after {len(body)} of {length} body bytes")
    else:
        body = stream.read(MAX_BODY_BYTES)
        headers.setdefault("connection", "close")
    return ProbeResponse(status, headers, body)


def _read_chunked(stream: BinaryIO) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = _read_line(stream).split(b";", 1)[0].strip()
        if not size_line:
            raise ProbeError("connection closed inside a chunked body")
        size = int(size_line, 16)
        if size == 0:
            while _read_line(stream) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise ProbeError("chunked body over the probe's limit")
        chunk = stream.read(size)
        if len(chunk) != size:
            raise ProbeError("connection closed inside a chunk")
        chunks.append(chunk)
        stream.read(2)


def build_request(path: str, headers: tuple[str, ...] = (), host: str = "127.0.0.1") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def probe(
    port: int, path: str, headers: tuple[str, ...] = (), *, requests: int = 2, timeout_s: float = 5.0
) -> ProbeResult:
    """Send `requests` GETs one after another on one connection to 127.0.0.1:port."""
    responses: list[ProbeResponse] = []
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            stream = sock.makefile("rb")
            for _ in range(requests):
                sock.sendall(build_request(path, headers))
                response = read_response(stream)
                responses.append(response)
                if response.asks_close:
                    break
    except (OSError, ProbeError, ValueError) as error:
        return ProbeResult(tuple(responses), kept_alive=False, error=f"{type(error).__name__}: {error}")
    kept_alive = len(responses) == requests and not responses[-1].asks_close
    return ProbeResult(tuple(responses), kept_alive=kept_alive)
