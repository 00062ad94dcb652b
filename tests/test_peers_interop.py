"""minilb and a real HAProxy 2.6 in one peers section on 127.0.0.1, over the real reactor."""

from __future__ import annotations

import random
import socket
import subprocess
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads

from minilb.config.model import Address, Bind, Peer, PeersSection, StoreItem, TableSpec
from minilb.errors import BUILTIN
from minilb.peers.service import PeersService
from minilb.stick.table import StickTable
from tests.conftest import haproxy_binary, requires_haproxy

pytestmark = [requires_haproxy, pytest.mark.interop, pytest.mark.integration]

SPEC = TableSpec(
    BUILTIN,
    "st_ip",
    "st_ip",
    "ip",
    4,
    1000,
    expire=60000,
    peers="mypeers",
    store=(
        StoreItem("gpc0"),
        StoreItem("conn_cnt"),
        StoreItem("http_req_cnt"),
        StoreItem("http_req_rate", period=10000),
    ),
)

CONFIG = """
global
    nbthread 1
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
peers mypeers
    peer hapA 127.0.0.1:{port_a}
    peer hapB 127.0.0.1:{port_b}
backend st_ip
    stick-table type ip size 1m expire 60s store http_req_rate(10s),gpc0,conn_cnt,http_req_cnt peers mypeers
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


@defer.inlineCallbacks
def wait_for(check, timeout: float = 12.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = yield defer.maybeDeferred(check)
        if result:
            return result
        yield task.deferLater(reactor, 0.1, lambda: None)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def haproxy_a(tmp_path):
    port_a, port_b = free_port(), free_port()
    sock = str(tmp_path / "a.sock")
    cfg = tmp_path / "hapA.cfg"
    cfg.write_text(CONFIG.format(sock=sock, port_a=port_a, port_b=port_b))
    proc = subprocess.Popen(
        [haproxy_binary(), "-f", str(cfg), "-L", "hapA", "-db"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                cli(sock, "show info")
                break
            except OSError:
                time.sleep(0.1)
        yield proc, sock, port_a, port_b
    finally:
        proc.kill()
        proc.wait(timeout=5)


@pytest_twisted.inlineCallbacks
def test_entries_flow_both_ways_with_haproxy(haproxy_a):
    proc, sock, port_a, port_b = haproxy_a
    section = PeersSection(
        BUILTIN,
        "mypeers",
        peers=(
            Peer(BUILTIN, "hapA", Address("ipv4", "127.0.0.1", port_a)),
            Peer(BUILTIN, "hapB", Address("ipv4", "127.0.0.1", port_b)),
        ),
        bind=Bind(BUILTIN, Address("ipv4", "127.0.0.1", port_b), name="hapB"),
        local_peer="hapB",
    )
    table = StickTable(SPEC, reactor)
    service = PeersService(reactor, section, "hapB", [table], rng=random.Random(7))
    service.startService()
    try:
        yield threads.deferToThread(
            cli, sock, "set table st_ip key 10.0.0.1 data.gpc0 5 data.http_req_cnt 300"
        )

        def learned():
            row = table.lookup(0x0A000001)
            return row is not None and table.get(row, "gpc0") == 5 and table.get(row, "http_req_cnt") == 300

        yield wait_for(learned)
        row = table.get_or_create(0x0A000009)
        table.set(row, "gpc0", 300)
        table.touch_local(row)

        def taught():
            out = cli(sock, "show table st_ip")
            return "key=10.0.0.9" in out and "gpc0=300" in out

        yield wait_for(lambda: threads.deferToThread(taught))
        peers_out = yield threads.deferToThread(cli, sock, "show peers")
        assert "hapB" in peers_out and "ESTA" in peers_out
        assert proc.poll() is None
    finally:
        yield service.stopService()
