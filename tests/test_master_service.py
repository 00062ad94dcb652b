"""MasterService on a fake process reactor: spawning, reload, soft and hard stops,
listener reuse across reloads, the master CLI."""

from __future__ import annotations

import pytest
from twisted.internet.testing import StringTransport

from minilb.master.service import MasterCliProtocol, MasterService, StartupError
from tests.support.reload import FakeBinder, FakeProcessReactor, config_text

PORT, EXTRA, PEER = 18080, 18081, 18082


class Harness:
    def __init__(self, tmp_path, text: str, **kw):
        self.cfg = tmp_path / "lb.cfg"
        self.cfg.write_text(text)
        self.reactor = FakeProcessReactor()
        self.binder = FakeBinder()
        self.logs: list[tuple[str, str]] = []
        self.exits: list[int] = []
        self.master = MasterService(
            [str(self.cfg)],
            localpeer="me",
            environ={"PATH": "/usr/bin", "KEEP": "1"},
            reactor=self.reactor,
            log=lambda level, msg: self.logs.append((level, msg)),
            binder=self.binder,
            python="/usr/bin/python3",
            on_exit=self.exits.append,
            **kw,
        )

    @property
    def procs(self):
        return self.reactor.processes

    def rewrite(self, text: str) -> None:
        self.cfg.write_text(text)

    def messages(self, level: str) -> list[str]:
        return [m for lv, m in self.logs if lv == level]


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path, config_text(PORT, peer_port=PEER, hard_stop_after="2s"))
    harness.master.startService()
    return harness


def test_start_spawns_a_worker_on_inherited_listeners(h):
    (p,) = h.procs
    assert p.args[:3] == ["/usr/bin/python3", "-m", "minilb.worker"]
    assert p.args[p.args.index("-f") + 1] == str(h.cfg)
    assert p.args[p.args.index("-L") + 1] == "me"
    assert "--old-worker" not in p.args
    assert p.env["KEEP"] == "1" and "PYTHONPATH" in p.env
    assert p.childFDs[0] == "w" and p.childFDs[1] == "r" and p.childFDs[2] == 2
    fe = h.binder.bound(f":{PORT}:")
    peer = h.binder.bound(f":{PEER}:")
    assert len(fe) == 1 and len(peer) == 1
    assert p.master_fd(f":{PORT}:") == fe[0].fd
    assert p.master_fd(f":{PEER}:") == peer[0].fd
    assert min(p.fd_map.values()) == 3
    assert "worker-cli" in p.fd_map
    assert p.childFDs[p.fd_map["stdout"]] == 1


def test_ready_of_a_new_worker_soft_stops_the_old_one(h):
    first = h.procs[0]
    first.say(b"ready\n")
    assert h.master.generations.current.gen == 1
    h.master.reload()
    assert len(h.procs) == 2
    second = h.procs[1]
    assert "--old-worker" in second.args
    assert first.written == []  # not before the new worker is ready
    second.say(b"rea")
    second.say(b"dy\n")
    assert first.written == [b"soft-stop\n"]
    assert second.written == []
    assert h.master.generations.current.gen == 2
    first.end(0)
    assert any("Former worker #1" in m for m in h.messages("notice"))
    assert h.exits == []


def test_broken_reload_keeps_generation_one(h):
    first = h.procs[0]
    first.say(b"ready\n")
    h.rewrite("frontend fe\n    bind 127.0.0.1:1\n    nonsense keyword\n")
    h.master.reload()
    assert len(h.procs) == 1
    assert first.written == [] and first.signals == []
    assert h.master.generations.current.gen == 1
    alerts = h.messages("alert")
    assert any("parsing [" in a and "lb.cfg:3" in a for a in alerts)
    assert any("reload aborted" in a for a in alerts)


def test_reload_whose_new_bind_cannot_be_bound_changes_nothing(h):
    h.procs[0].say(b"ready\n")
    h.binder.fail.add(f"ipv4:[127.0.0.1]:{EXTRA}:v6only=0:v4v6=0")
    h.rewrite(config_text(PORT, extra_port=EXTRA, peer_port=PEER))
    h.master.reload()
    assert len(h.procs) == 1
    assert any("Address already in use" in a for a in h.messages("alert"))


def test_hard_stop_after_kills_an_old_worker_that_does_not_drain(h):
    first = h.procs[0]
    first.say(b"ready\n")
    h.master.reload()
    h.procs[1].say(b"ready\n")
    assert first.written == [b"soft-stop\n"]
    h.reactor.advance(1.9)
    assert first.signals == []
    h.reactor.advance(0.2)
    assert first.written[-1] == b"hard-stop\n"
    assert first.signals == ["TERM"]
    h.reactor.advance(3.0)
    assert first.signals == ["TERM", "KILL"]
    first.end(-9)
    assert h.exits == [] and h.master.generations.current.gen == 2
    assert h.procs[1].signals == []


def test_new_worker_that_never_gets_ready_is_killed_and_the_old_keeps_serving(h):
    first = h.procs[0]
    first.say(b"ready\n")
    h.master.reload()
    second = h.procs[1]
    h.reactor.advance(31)
    assert second.signals == ["TERM"]
    second.end(1)
    assert first.written == [] and h.exits == []
    assert h.master.generations.current.gen == 1


def test_unchanged_bind_keeps_its_socket_across_reloads(h):
    h.procs[0].say(b"ready\n")
    for _ in range(3):
        h.master.reload()
        h.procs[-1].say(b"ready\n")
        h.procs[-2].end(0)
    fds = {p.master_fd(f":{PORT}:") for p in h.procs}
    assert len(fds) == 1
    assert len(h.binder.bound(f":{PORT}:")) == 1
    assert not h.binder.bound(f":{PORT}:")[0].closed


def test_unix_frontend_bind_is_bound_by_the_master_and_inherited(tmp_path):
    path = tmp_path / "fe.sock"
    text = config_text(PORT, peer_port=PEER).replace(
        f"    bind 127.0.0.1:{PORT}\n", f"    bind 127.0.0.1:{PORT}\n    bind unix@{path} mode 600\n"
    )
    h = Harness(tmp_path, text)
    h.master.startService()
    (sock,) = h.binder.bound(f"unix:{path}:")
    assert sock.key == f"unix:{path}:mode=0o600"
    assert h.procs[0].master_fd(f"unix:{path}:") == sock.fd
    h.procs[0].say(b"ready\n")
    h.master.reload()
    h.procs[1].say(b"ready\n")
    h.procs[0].end(0)
    assert h.procs[1].master_fd(f"unix:{path}:") == sock.fd and not sock.closed  # kept


def test_added_bind_is_bound_and_handed_to_the_new_worker_at_once(h):
    h.procs[0].say(b"ready\n")
    h.rewrite(config_text(PORT, extra_port=EXTRA, peer_port=PEER))
    h.master.reload()
    (added,) = h.binder.bound(f":{EXTRA}:")
    assert h.procs[1].master_fd(f":{EXTRA}:") == added.fd
    assert not any(f":{EXTRA}:" in k for k in h.procs[0].fd_map)


def test_removed_bind_is_closed_once_the_old_worker_is_gone(h):
    h.rewrite(config_text(PORT, extra_port=EXTRA, peer_port=PEER))
    h.master.reload()  # generation 2 has the extra frontend
    h.procs[1].say(b"ready\n")
    h.procs[0].end(0)
    (extra,) = h.binder.bound(f":{EXTRA}:")
    h.rewrite(config_text(PORT, peer_port=PEER))
    h.master.reload()  # generation 3 has not
    h.procs[2].say(b"ready\n")
    assert not any(f":{EXTRA}:" in k for k in h.procs[2].fd_map)
    assert not extra.closed  # generation 2 still drains on it
    h.procs[1].end(0)
    assert extra.closed
    assert not h.binder.bound(f":{PORT}:")[0].closed


def test_current_worker_dying_makes_the_master_exit_with_an_error(h):
    first = h.procs[0]
    first.say(b"ready\n")
    first.end(3)
    assert h.exits == [3]
    assert any("Current worker #1" in a for a in h.messages("alert"))
    assert all(s.closed for s in h.binder.sockets if "worker-cli" not in s.key)


def test_stop_is_fast_and_fires_when_every_worker_is_gone(h):
    h.procs[0].say(b"ready\n")
    h.master.reload()
    d = h.master.stopService()
    fired = []
    d.addCallback(fired.append)
    assert h.procs[0].signals == ["TERM"] and h.procs[1].signals == ["TERM"]
    h.procs[0].end(0)
    assert fired == []
    h.procs[1].end(0)
    assert fired == [0] and h.exits == [0]


def test_overlong_control_line_stops_that_worker(h):
    first = h.procs[0]
    first.say(b"x" * 5000)
    assert first.signals == ["TERM"]


def test_invalid_config_at_start_raises(tmp_path):
    harness = Harness(tmp_path, "frontend fe\n    bogus\n")
    with pytest.raises(StartupError):
        harness.master.startService()
    assert harness.procs == []
    assert any("parsing [" in a for a in harness.messages("alert"))


def test_pidfile_written_at_start_and_removed_at_exit(tmp_path):
    harness = Harness(tmp_path, config_text(PORT), pidfile=str(tmp_path / "m.pid"))
    harness.master.startService()
    assert (tmp_path / "m.pid").read_text().strip().isdigit()
    harness.master.stopService()
    harness.procs[0].end(0)
    assert not (tmp_path / "m.pid").exists()


def cli(master, data: bytes) -> bytes:
    proto = MasterCliProtocol(master)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(data)
    return transport.value()


def test_master_cli_show_proc_lists_current_and_old_workers(h):
    h.procs[0].say(b"ready\n")
    h.rewrite("frontend fe\n    bogus\n")
    h.master.reload()  # failed
    h.rewrite(config_text(PORT, peer_port=PEER))
    h.master.reload()
    h.procs[1].say(b"ready\n")
    lines = cli(h.master, b"show proc\n").decode().splitlines()
    assert lines[0].split() == ["#<PID>", "<type>", "<reloads>", "<uptime>", "<version>"]
    assert lines[1].split()[1:5] == ["master", "1", "[failed:", "1]"]
    assert lines[2] == "# workers"
    assert lines[3].split()[:3] == [str(h.procs[1].pid), "worker", "0"]
    assert lines[4] == "# old workers"
    assert lines[5].split()[:3] == [str(h.procs[0].pid), "worker", "1"]
    assert lines[6:] == ["# programs", ""]


def test_master_cli_targets_current_worker_and_old_ones_by_pid(h):
    h.procs[0].say(b"ready\n")
    h.master.reload()
    h.procs[1].say(b"ready\n")
    assert h.master.worker_for("1") == 2
    assert h.master.worker_for(f"!{h.procs[0].pid}") == 1
    assert h.master.worker_for("2") is None and h.master.worker_for("!1") is None
    cli(h.master, b"@1 show table\n")
    ((address, _factory, _timeout, _),) = [c[:4] for c in h.reactor.unixClients]
    assert address == "\0" + h.master.worker_cli[2]


def test_master_cli_reload_help_and_unknown(h):
    h.procs[0].say(b"ready\n")
    assert cli(h.master, b"reload\nhelp\n") == b""  # a reload closes the connection
    h.reactor.advance(0)
    assert len(h.procs) == 2
    assert b"show proc" in cli(h.master, b"help\n")
    assert cli(h.master, b"bogus\n").startswith(b"Unknown command")
    assert b"Can't find the target PID" in cli(h.master, b"@9 show info\n")
