"""The stats socket adapter: bytes in, HAProxy-shaped answers out, connection closing."""

from twisted.internet.address import UNIXAddress
from twisted.internet.testing import StringTransport

from minilb.runtime.cli import CommandProcessor
from minilb.runtime.stats_socket import StatsSocketFactory
from minilb.stick.table import StickTable
from minilb.timebase import ManualClock
from tests.support.stick import spec


class PullingTransport(StringTransport):
    """A StringTransport that pulls a registered pull producer like a real transport
    whose buffer drains at once (FileDescriptor calls resumeProducing on register)."""

    def registerProducer(self, producer, streaming):
        super().registerProducer(producer, streaming)
        self.pulls = getattr(self, "pulls", 0)
        while self.producer is producer:
            self.pulls += 1
            producer.resumeProducing()


def connect(level="admin", max_line=16384, size=100):
    table = StickTable(spec("fe", "ip", size, 60000, "gpc0"), ManualClock(1000.0))
    factory = StatsSocketFactory(CommandProcessor([table]), level, max_line=max_line)
    proto = factory.buildProtocol(UNIXAddress("/tmp/x.sock"))
    transport = PullingTransport()
    proto.makeConnection(transport)
    return proto, transport, table


def test_one_command_then_close():
    proto, tr, _ = connect()
    proto.dataReceived(b"show table\n")
    assert tr.value() == b"# table: fe, type: ip, size:100, used:0\n\n"
    assert tr.disconnecting


def test_lines_arriving_together_all_run_before_closing():
    proto, tr, table = connect()
    proto.dataReceived(b"set table fe key 1.2.3.4 data.gpc0 7\nshow table fe\n")
    assert tr.value().startswith(b"\n# table: fe, type: ip, size:100, used:1\n0x")
    assert b" gpc0=7\n\n" in tr.value()
    assert tr.disconnecting


def test_partial_line_waits_for_the_rest():
    proto, tr, _ = connect()
    proto.dataReceived(b"show ta")
    assert tr.value() == b"" and not tr.disconnecting
    proto.dataReceived(b"ble\r\n")
    assert tr.value() == b"# table: fe, type: ip, size:100, used:0\n\n"


def test_prompt_mode_is_interactive_until_quit():
    proto, tr, _ = connect()
    proto.dataReceived(b"prompt\n")
    assert tr.value() == b"\n> " and not tr.disconnecting
    tr.clear()
    proto.dataReceived(b"show cli level\n")
    assert tr.value() == b"admin\n\n> " and not tr.disconnecting
    tr.clear()
    proto.dataReceived(b"quit\nshow table\n")
    assert tr.value() == b"" and tr.disconnecting


def test_level_comes_from_the_bind_line():
    proto, tr, _ = connect("user")
    proto.dataReceived(b"set table fe key 1.2.3.4 data.gpc0 7\n")
    assert tr.value() == b"Permission denied\n\n"


def test_too_long_line_closes():
    proto, tr, _ = connect(max_line=64)
    proto.dataReceived(b"show table " + b"x" * 100)
    assert tr.disconnecting


def test_listen_stats_sockets_on_unix_and_tcp(tmp_path):
    from twisted.internet.testing import MemoryReactor

    from minilb.config.model import Address, StatsSocket
    from minilb.runtime.stats_socket import listen_stats_sockets
    from tests.support.stick import HERE

    stale = tmp_path / "admin.sock"
    stale.write_text("left over by a previous run")
    sockets = (
        StatsSocket(HERE, Address("unix", path=str(stale)), mode=0o600, level="admin"),
        StatsSocket(HERE, Address("ipv4", host="127.0.0.1", port=9999), level="user"),
    )
    reactor = MemoryReactor()
    processor = CommandProcessor([])
    ports = listen_stats_sockets(reactor, sockets, processor)
    assert len(ports) == 2
    assert not stale.exists()
    path, factory, _backlog, mode, _lock = reactor.unixServers[0]
    assert (path, mode, factory.level, factory.processor) == (str(stale), 0o600, "admin", processor)
    port, tcp_factory, _backlog, interface = reactor.tcpServers[0]
    assert (port, interface, tcp_factory.level) == (9999, "127.0.0.1", "user")


def test_big_dump_is_written_in_chunks():
    proto, tr, table = connect(size=2000)
    for i in range(1000):
        table.get_or_create(table.normalize_key(f"10.0.{i // 256}.{i % 256}"))
    proto.dataReceived(b"show table fe\n")
    lines = tr.value().decode().split("\n")
    assert lines[0] == "# table: fe, type: ip, size:2000, used:1000"
    assert sum(1 for line in lines if " key=10.0." in line) == 1000
    assert tr.pulls >= 1000 // 256 + 2  # header, 4 chunks of entries, terminator
    assert tr.disconnecting


def test_a_line_of_many_commands_is_answered_in_one_write():
    proto, tr, table = connect(size=1000)
    tr.writes = []
    write = tr.write
    tr.write = lambda data: (tr.writes.append(data), write(data))
    cmds = ";".join(f"set table fe key 10.0.0.{i} data.gpc0 {i}" for i in range(200))
    proto.dataReceived(cmds.encode() + b"\n")
    assert tr.writes == [b"\n" * 200]
    assert len(table) == 200 and tr.disconnecting


def test_lines_received_during_a_dump_wait_their_turn():
    table = StickTable(spec("fe", "ip", 100, 60000, "gpc0"), ManualClock(1000.0))
    proto = StatsSocketFactory(CommandProcessor([table]), "admin").buildProtocol(None)
    tr = StringTransport()  # does not pull by itself: the dump stays in progress
    proto.makeConnection(tr)
    proto.dataReceived(b"prompt\n")
    while tr.producer is not None:
        tr.producer.resumeProducing()
    tr.clear()
    proto.dataReceived(b"show table fe\nshow cli level\n")
    assert tr.value() == b""
    while tr.producer is not None:
        tr.producer.resumeProducing()
    assert tr.value() == b"# table: fe, type: ip, size:100, used:0\n\n> admin\n\n> "
    assert not tr.disconnecting
