"""minilb and a real HAProxy 2.6 in one peers section on 127.0.0.1, over the real reactor."""

from __future__ import annotations

import random
import socket
import subprocess
import time

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads

from minilb.config.model import Address, Bind, Peer, PeersSection, TLSOptions
from minilb.errors import BUILTIN
from minilb.peers.service import PeersService
from minilb.stick.table import StickTable
from tests.conftest import haproxy_binary, requires_haproxy
from tests.support.peers import ST_IP_SPEC
from tests.support.procs import free_port

pytestmark = [requires_haproxy, pytest.mark.interop, pytest.mark.integration]

SPEC = ST_IP_SPEC

TLS_PEERS = """
peers mypeers
    bind 127.0.0.1:{port_a} ssl crt {pem}
    default-server ssl verify none
    server hapA
    server hapB 127.0.0.1:{port_b}
"""
PLAIN_PEERS = """
peers mypeers
    peer hapA 127.0.0.1:{port_a}
    peer hapB 127.0.0.1:{port_b}
"""

CONFIG = """
global
    nbthread 1
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
{peers}
backend st_ip
    stick-table type ip size 1m expire 60s store http_req_rate(10s),gpc0,conn_cnt,http_req_cnt peers mypeers
"""


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


class HAProxy:
    """A real haproxy playing hapA; `start()` again after `kill()` is a restart."""

    def __init__(self, tmp_path, pem: str | None = None):
        self.port_a, self.port_b = free_port(), free_port()
        self.sock = str(tmp_path / "a.sock")
        self.cfg = tmp_path / "hapA.cfg"
        peers = (TLS_PEERS if pem else PLAIN_PEERS).format(port_a=self.port_a, port_b=self.port_b, pem=pem)
        self.cfg.write_text(CONFIG.format(sock=self.sock, peers=peers))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [haproxy_binary(), "-f", str(self.cfg), "-L", "hapA", "-db"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            try:
                cli(self.sock, "show info")
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("haproxy did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def haproxy_a(tmp_path):
    hap = HAProxy(tmp_path)
    hap.start()
    try:
        yield hap
    finally:
        hap.kill()


def section_for(hap: HAProxy, pem: str | None = None) -> PeersSection:
    server_tls = TLSOptions(enabled=True, verify="none") if pem else TLSOptions()
    bind_tls = TLSOptions(enabled=True, crt=(pem,)) if pem else TLSOptions()
    return PeersSection(
        BUILTIN,
        "mypeers",
        peers=(
            Peer(BUILTIN, "hapA", Address("ipv4", "127.0.0.1", hap.port_a), tls=server_tls),
            Peer(BUILTIN, "hapB", Address("ipv4", "127.0.0.1", hap.port_b), tls=server_tls),
        ),
        bind=Bind(BUILTIN, Address("ipv4", "127.0.0.1", hap.port_b), tls=bind_tls, name="hapB"),
        local_peer="hapB",
    )


def self_signed_pem(path) -> str:
    """A self-signed certificate and its key in one PEM file, as HAProxy's ``crt`` wants."""
    key, crt = path.with_suffix(".key"), path.with_suffix(".crt")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=peer"]
        + ["-keyout", str(key), "-out", str(crt)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    path.write_bytes(crt.read_bytes() + key.read_bytes())
    return str(path)


@pytest_twisted.inlineCallbacks
def test_entries_flow_both_ways_with_haproxy(haproxy_a):
    hap = haproxy_a
    table = StickTable(SPEC, reactor)
    service = PeersService(reactor, section_for(hap), "hapB", [table], rng=random.Random(7))
    service.startService()
    try:
        yield threads.deferToThread(
            cli, hap.sock, "set table st_ip key 10.0.0.1 data.gpc0 5 data.http_req_cnt 300"
        )

        def learned():
            row = table.lookup(0x0A000001)
            return row is not None and table.get(row, "gpc0") == 5 and table.get(row, "http_req_cnt") == 300

        yield wait_for(learned)
        row = table.get_or_create(0x0A000009)
        table.set(row, "gpc0", 300)
        table.touch_local(row)

        def taught():
            out = cli(hap.sock, "show table st_ip")
            return "key=10.0.0.9" in out and "gpc0=300" in out

        yield wait_for(lambda: threads.deferToThread(taught))
        peers_out = yield threads.deferToThread(cli, hap.sock, "show peers")
        assert "hapB" in peers_out and "ESTA" in peers_out

        # haproxy restarts empty: it asks us for a resync and gets everything back,
        # including the entry it had taught us itself
        hap.kill()
        hap.start()

        def relearned():
            out = cli(hap.sock, "show table st_ip")
            return "key=10.0.0.9" in out and "key=10.0.0.1" in out and "http_req_cnt=300" in out

        yield wait_for(lambda: threads.deferToThread(relearned))
    finally:
        yield service.stopService()


def _key(prefix: int, i: int) -> str:
    return f"10.{prefix}.{i >> 8}.{i & 255}"


def _table_lines(hap: HAProxy) -> dict[str, str]:
    """haproxy's ``show table st_ip``: key -> the rest of its line."""
    out = {}
    for line in cli(hap.sock, "show table st_ip").splitlines():
        if " key=" in line:
            key = line.split(" key=", 1)[1].split(" ", 1)[0]
            out[key] = line
    return out


@pytest_twisted.inlineCallbacks
def test_full_resyncs_of_thousands_of_entries_both_ways_with_haproxy(haproxy_a):
    """haproxy teaches a starting minilb 2,000 entries (TIMED updates into the learner's
    fast path), then teaches back to a restarted haproxy 4,000 (the batched teach):
    every entry arrives with its values."""
    hap = haproxy_a
    count = 2000
    for start in range(0, count, 100):
        cmds = ";".join(
            f"set table st_ip key {_key(1, i)} data.gpc0 {i} data.http_req_cnt {i * 3}"
            for i in range(start, start + 100)
        )
        yield threads.deferToThread(cli, hap.sock, cmds)
    table = StickTable(attrs.evolve(SPEC, size=3 * count), reactor)
    service = PeersService(reactor, section_for(hap), "hapB", [table], rng=random.Random(3))
    service.startService()
    try:

        def learned():
            if len(table) < count:
                return False
            for i in range(count):
                row = table.lookup(0x0A010000 + i)
                assert row is not None and table.get(row, "gpc0") == i
                assert table.get(row, "http_req_cnt") == i * 3
                assert 0 < table.expire_in(row) <= 60000
            return True

        yield wait_for(learned)
        for i in range(count):
            row = table.get_or_create(0x0A020000 + i)
            table.set(row, "gpc0", i + 7)
            table.touch_local(row)
        hap.kill()
        hap.start()

        def relearned():
            lines = _table_lines(hap)
            return len(lines) >= 2 * count and lines

        lines = yield wait_for(lambda: threads.deferToThread(relearned))
        assert len(lines) == 2 * count
        for i in range(0, count, 97):
            assert f" gpc0={i} " in lines[_key(1, i)] and f"http_req_cnt={i * 3} " in lines[_key(1, i)] + " "
            assert f" gpc0={i + 7} " in lines[_key(2, i)]
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_tls_peers_with_haproxy(tmp_path, request):
    pem = self_signed_pem(tmp_path / "peer.pem")
    hap = HAProxy(tmp_path, pem=pem)
    request.addfinalizer(hap.kill)
    hap.start()
    table = StickTable(SPEC, reactor)
    service = PeersService(reactor, section_for(hap, pem), "hapB", [table], rng=random.Random(8))
    service.startService()
    try:
        yield threads.deferToThread(cli, hap.sock, "set table st_ip key 10.0.0.1 data.gpc0 42")
        yield wait_for(
            lambda: table.lookup(0x0A000001) is not None and table.get(table.lookup(0x0A000001), "gpc0") == 42
        )
        row = table.get_or_create(0x0A000002)
        table.set(row, "gpc0", 7)
        table.touch_local(row)

        def taught():
            out = cli(hap.sock, "show table st_ip")
            return "key=10.0.0.2" in out and "gpc0=7" in out

        yield wait_for(lambda: threads.deferToThread(taught))
    finally:
        yield service.stopService()
        hap.kill()


MESH_CONFIG = """
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
    peer hapC 127.0.0.1:{port_c}
backend st_ip
    stick-table type ip size 1m expire 60s store http_req_rate(10s),gpc0,conn_cnt,http_req_cnt peers mypeers
frontend fe
    bind 127.0.0.1:{port_fe}
    tcp-request connection track-sc0 src table st_ip
    http-request return status 200 content-type text/plain string ok
"""


@pytest_twisted.inlineCallbacks
def test_three_node_mesh_with_haproxy_and_traffic(tmp_path, request):
    """haproxy (hapA) and two minilb (hapB, hapC) in one section: an entry made by
    traffic on haproxy reaches both with equal counters; an entry set on one minilb
    reaches haproxy and the other minilb."""
    import urllib.request

    hap = HAProxy(tmp_path)
    request.addfinalizer(hap.kill)
    port_c, port_fe = free_port(), free_port()
    hap.cfg.write_text(
        MESH_CONFIG.format(
            sock=hap.sock, port_a=hap.port_a, port_b=hap.port_b, port_c=port_c, port_fe=port_fe
        )
    )
    hap.start()

    def get(url):
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read()

    # traffic first: a full resync racing with traffic may legitimately carry an older
    # value back to haproxy (learned values overwrite), which is not what this checks
    for _ in range(3):
        assert get(f"http://127.0.0.1:{port_fe}/") == b"ok"
    addresses = {"hapA": hap.port_a, "hapB": hap.port_b, "hapC": port_c}
    peers = tuple(Peer(BUILTIN, n, Address("ipv4", "127.0.0.1", p)) for n, p in addresses.items())
    services = []
    for name in ("hapB", "hapC"):
        section = PeersSection(
            BUILTIN,
            "mypeers",
            peers=peers,
            bind=Bind(BUILTIN, Address("ipv4", "127.0.0.1", addresses[name])),
            local_peer=name,
        )
        service = PeersService(reactor, section, name, [StickTable(SPEC, reactor)], rng=random.Random(name))
        service.startService()
        services.append(service)
    tb, tc = (svc.sync.tables[0].table for svc in services)
    try:
        local = 0x7F000001

        def counted(table):
            row = table.lookup(local)
            return row is not None and table.get(row, "conn_cnt") == 3 and table.get(row, "http_req_cnt") == 3

        yield wait_for(lambda: counted(tb) and counted(tc))
        out = yield threads.deferToThread(cli, hap.sock, "show table st_ip")
        assert "key=127.0.0.1" in out and "conn_cnt=3" in out and "http_req_cnt=3" in out
        row = tb.get_or_create(0x0A000063)
        tb.set(row, "gpc0", 99)
        tb.touch_local(row)

        def everywhere():
            row_c = tc.lookup(0x0A000063)
            if row_c is None or tc.get(row_c, "gpc0") != 99:
                return False
            return "gpc0=99" in cli(hap.sock, "show table st_ip")

        yield wait_for(lambda: threads.deferToThread(everywhere))
    finally:
        for service in services:
            yield service.stopService()
        hap.kill()
