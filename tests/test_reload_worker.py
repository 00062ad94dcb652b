"""The worker side of a reload on a fake reactor: adopting inherited sockets, the
control channel, and the soft stop (hand-over dial, drain, first-request grace)."""

from __future__ import annotations

import socket

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport

from minilb.config.load import load_config
from minilb.master.control import listener_specs
from minilb.worker.control import ControlProtocol
from minilb.worker.process import WorkerProcess, adopt_binds
from tests.support.reload import config_text

PORT, PEER, STATS = 18090, 18091, 18092


def load(tmp_path, text: str):
    path = tmp_path / "lb.cfg"
    path.write_text(text)
    config, _ = load_config([str(path)], localpeer="me")
    return config


@pytest.fixture
def config(tmp_path):
    return load(tmp_path, config_text(PORT, peer_port=PEER, stats=f"ipv4@127.0.0.1:{STATS}"))


@pytest.fixture
def inherited(config):
    """Real listening sockets (ephemeral ports) standing in for the master's, by key."""
    socks = {}
    for key in listener_specs(config):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        socks[key] = s
    yield {key: s.fileno() for key, s in socks.items()}
    for s in socks.values():
        s.close()


def test_adopt_binds_rewrites_frontend_binds_to_inherited_fds(config, inherited):
    adopted = adopt_binds(config, inherited)
    (fe,) = [p for p in adopted.proxies if p.name == "fe"]
    (bind,) = fe.binds
    assert bind.address.family == "fd"
    assert bind.address.fd == inherited[f"ipv4:[127.0.0.1]:{PORT}:v6only=0:v4v6=0"]
    with pytest.raises(OSError, match="no inherited socket"):
        adopt_binds(config, {})


def test_adopt_binds_rewrites_unix_binds_too(tmp_path):
    path = tmp_path / "fe.sock"
    text = config_text(PORT).replace(
        f"    bind 127.0.0.1:{PORT}\n", f"    bind 127.0.0.1:{PORT}\n    bind unix@{path} mode 600\n"
    )
    config = load(tmp_path, text)
    keys = list(listener_specs(config))
    assert f"unix:{path}:mode=0o600" in keys
    adopted = adopt_binds(config, {key: 40 + i for i, key in enumerate(keys)})
    (fe,) = [p for p in adopted.proxies if p.name == "fe"]
    assert [b.address.family for b in fe.binds] == ["fd", "fd"]
    assert fe.binds[1].address.fd == 40 + keys.index(f"unix:{path}:mode=0o600")


def test_start_adopts_every_listener_and_builds_the_peers_section(config, inherited):
    reactor = MemoryReactorClock()
    worker = WorkerProcess(config, reactor, inherited, has_old_process=True, log=lambda *a: None)
    worker.start()
    assert sorted(fd for fd, _, _ in reactor.adoptedPorts) == sorted(inherited.values())
    (peers,) = worker.peers
    assert [shared.table.name for shared in peers.sync.tables] == ["mypeers/t"]
    assert peers.sync.has_old_process
    assert "show peers" in worker.processor.session("admin").handle_line("help")[0]


def test_soft_stop_dials_the_successor_and_finishes_after_drain(config, inherited):
    reactor = MemoryReactorClock()
    logs = []
    worker = WorkerProcess(config, reactor, inherited, log=lambda *a: logs.append(a))
    worker.start()
    done = []
    worker.soft_stop().addCallback(done.append)
    assert worker.soft_stop() is worker._stopping  # asked twice: one stop
    # the hand-over dials the local peer's own address (where the new worker listens)
    assert [(host, port) for host, port, *_ in reactor.tcpClients] == [("127.0.0.1", PEER)]
    assert done == []
    reactor.advance(6)  # nobody answered: the hand-over gives up after 5 s
    for _ in range(5):
        reactor.advance(1)
    assert len(done) == 1
    assert any("did not confirm" in message for _, message in logs)


class FakeConn:
    def __init__(self, requests: int, head=None):
        self.requests = requests
        self.head = head
        self.open = True
        self.closed_gracefully = False
        self.transport = StringTransport()

    def graceful_close(self) -> None:
        self.closed_gracefully = True


def test_soft_stop_spares_connections_waiting_for_their_first_request(config, inherited):
    reactor = MemoryReactorClock()
    worker = WorkerProcess(config, reactor, inherited, log=lambda *a: None)
    worker.start()
    (_, factory), *_ = worker.service.frontends
    fresh, idle = FakeConn(0), FakeConn(3)
    factory.connections.update({fresh, idle})
    worker.soft_stop()
    assert idle.closed_gracefully
    assert not fresh.closed_gracefully
    assert fresh in factory.connections  # still awaited by the drain


def test_control_protocol_lines():
    calls = []
    proto = ControlProtocol(
        lambda: calls.append("soft"), lambda why: calls.append(("hard", why)), lambda *a: calls.append(a)
    )
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.send("ready")
    assert transport.value() == b"ready\n"
    proto.dataReceived(b"soft-st")
    proto.dataReceived(b"op\nwhat\n")
    assert calls[0] == "soft" and calls[1][0] == "warning"
    proto.dataReceived(b"hard-stop\n")
    assert calls[2] == ("hard", "hard stop asked by the master")
    proto.dataReceived(b"z" * 5000)
    assert calls[3][0] == "hard" and "longer than" in calls[3][1]
    proto.connectionLost(None)
    assert calls[4] == ("hard", "the master closed the control channel")
