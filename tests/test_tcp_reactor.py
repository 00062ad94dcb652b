"""FastEPollReactor: a private instance (not the global reactor) runs a loopback
exchange; an exception escaping a selectable is logged and the loop goes on."""

from __future__ import annotations

from twisted.internet import protocol
from twisted.python import log

from minilb.tcp.reactor import FastEPollReactor


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data.upper())


class Client(protocol.Protocol):
    def connectionMade(self):
        self.got = b""
        self.transport.write(b"ping")

    def dataReceived(self, data):
        self.got += data
        if self.got == b"PING":
            self.factory.done.append(self.got)
            self.transport.loseConnection()


class Broken:
    """A selectable whose doRead raises past Twisted's own handling."""

    def __init__(self, fd):
        self._fd = fd

    def fileno(self):
        return self._fd

    def doRead(self):
        raise RuntimeError("boom")

    def connectionLost(self, reason):  # Twisted's own handling of the error fails too
        raise RuntimeError("boom again")

    def logPrefix(self):
        return "broken-selectable"


def test_loopback_exchange_and_errors_are_logged():
    import os

    reactor = FastEPollReactor()
    server = protocol.Factory.forProtocol(Echo)
    port = reactor.listenTCP(0, server, interface="127.0.0.1")
    client = protocol.ClientFactory.forProtocol(Client)
    client.done = []
    reactor.connectTCP("127.0.0.1", port.getHost().port, client)

    read_fd, write_fd = os.pipe()
    broken = Broken(read_fd)
    os.write(write_fd, b"x")
    errors = []

    def observer(event):
        if event.get("isError"):
            errors.append(event)

    log.addObserver(observer)
    try:
        reactor.addReader(broken)
        for _ in range(200):  # bounded: a few iterations are enough on loopback
            reactor.iterate(0.01)
            if client.done and errors:
                break
        reactor.removeReader(broken)
    finally:
        log.removeObserver(observer)
        port.stopListening()
        os.close(read_fd)
        os.close(write_fd)
        reactor.iterate(0)
    assert client.done == [b"PING"]
    ours = [e for e in errors if e.get("system") == "broken-selectable"]
    assert len(ours) == 1 and "boom again" in str(ours[0]["failure"].value)


def test_install_if_unset_leaves_an_installed_reactor_alone():
    import subprocess
    import sys

    code = (
        "import twisted.internet.reactor as r\n"
        "from minilb.tcp.reactor import install_if_unset\n"
        "assert install_if_unset() is False\n"
        "import twisted.internet.reactor as r2\n"
        "assert r is r2\n"
        "print(type(r2).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    code = (
        "from minilb.tcp.reactor import install_if_unset, FastEPollReactor\n"
        "assert install_if_unset() is True\n"
        "from twisted.internet import reactor\n"
        "assert isinstance(reactor, FastEPollReactor)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_the_traffic_entry_points_tune_the_collector_and_freeze_start_up_objects():
    import subprocess
    import sys

    code = (
        "import gc\n"
        "from minilb.tcp.reactor import install_if_unset, YOUNG_THRESHOLD\n"
        "default = gc.get_threshold()\n"
        "assert install_if_unset() is True\n"
        "assert gc.get_threshold() == (YOUNG_THRESHOLD,) + default[1:]\n"
        "from twisted.internet import reactor\n"
        "built_at_start = [object() for _ in range(10)]\n"
        "def check():\n"
        "    print(gc.get_freeze_count())\n"
        "    reactor.stop()\n"
        "assert gc.get_freeze_count() == 0\n"
        "reactor.callWhenRunning(reactor.callLater, 0, check)\n"
        "reactor.run()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 1000  # modules, configuration: out of the collections
