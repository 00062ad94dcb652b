"""Helpers for the rules tests: build Sessions, Txns and Proxy models from text."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from minilb.config.model import AclLine, Config, Proxy, RuleLine, Server, Timeouts, UseBackend
from minilb.errors import SourceLocation
from minilb.http.parse import split_uri
from minilb.rules.txn import Session, Txn

DATA = Path(__file__).resolve().parent.parent / "data"
CFG = "test.cfg"


def session(
    src: str = "10.0.0.1", src_port: int = 40000, dst: str = "127.0.0.1", dst_port: int = 80, **kw
) -> Session:
    return Session(
        src=src, src_port=src_port, dst=dst, dst_port=dst_port, frontend=kw.pop("frontend", "fe"), **kw
    )


def txn(request: bytes = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", sess: Session | None = None) -> Txn:
    """A Txn from the bytes of a request head (as the HTTP adapter would fill it)."""
    head = request.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    method, uri, version = lines[0].split(b" ")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers.append([k, v.strip(b" \t")])
    path, query = split_uri(uri)
    return Txn(sess or session(), method.decode(), uri, path, query, version.decode().split("/")[1], headers)


def split_words(text: str) -> list[str]:
    """Shell-like split honouring quotes (enough for test rule lines)."""
    import shlex

    lex = shlex.shlex(text, posix=True)
    lex.whitespace_split = True
    lex.escape = ""
    return list(lex)


def proxy(lines: str, name: str = "fe", kind: str = "listen", start_line: int = 1, **kw) -> Proxy:
    """A Proxy whose acl / rule / use_backend lines are given as config text (one per line)."""
    acls, rules, ubs = [], [], []
    for n, raw in enumerate(lines.strip("\n").splitlines(), start_line):
        raw = raw.strip()
        if not raw:
            continue
        words = split_words(raw)
        origin = SourceLocation(CFG, n)
        if words[0] == "acl":
            acls.append(AclLine(origin, words[1], tuple(words[2:])))
        elif words[0] == "use_backend":
            ubs.append(UseBackend(origin, words[1], tuple(words[2:])))
        elif words[0] in ("tcp-request", "tcp-response", "stick", "test-pin") and len(words) > 1:
            rules.append(RuleLine(origin, f"{words[0]} {words[1]}", tuple(words[2:])))
        else:
            rules.append(RuleLine(origin, words[0], tuple(words[1:])))
    kw.setdefault("timeouts", Timeouts(connect=5000, tarpit=10))
    kw.setdefault("servers", (Server(SourceLocation(CFG, 0), "s1", None),))
    return Proxy(
        SourceLocation(CFG, start_line - 1),
        name,
        kind,
        mode="http",
        acls=tuple(acls),
        rules=tuple(rules),
        use_backends=tuple(ubs),
        **kw,
    )


def config(*proxies: Proxy) -> Config:
    return Config(files=(CFG,), proxies=proxies)


def haproxy_replies() -> dict[str, bytes]:
    """What haproxy 2.6.12 answered (tests/support/rules_capture.py wrote it)."""
    data = json.loads((DATA / "rules_haproxy_replies.json").read_text())
    return {k: v.encode("latin-1") for k, v in data.items()}


@contextmanager
def running_haproxy(binary: str, cfg: str | Path, port: int) -> Iterator[None]:
    """A real haproxy on ``cfg`` (checked with -c first), stopped on exit; waits (10 s at
    most) until ``port`` accepts connections."""
    check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=20)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen(
        [binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(5)


def exchange(port: int, request: bytes, idle: float = 0.5) -> bytes:
    """Send ``request`` and read until the connection is idle for ``idle`` s or closes (3 s at most)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        s.settimeout(idle)
        out = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
        return out


def exchange_head(port: int, request: bytes) -> bytes:
    """Send ``request``; the response up to a complete content-length body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and request.startswith(b"HEAD "):
                return data  # no body follows, whatever content-length says
            if sep:
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                if len(body) >= length:
                    return data
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
