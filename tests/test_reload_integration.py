"""Seamless reloads with real processes on 127.0.0.1: ``python -m minilb.master``
spawning ``python -m minilb.worker`` children on inherited sockets.

Every test runs the master in its own process group and kills that group at the end
(`Master.stop`); every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest

from tests.support.procs import free_port
from tests.support.reload import LoadLoop, Master, config_text, group_pids, http_get

#: reloads under load: issue 6 asks 20, which takes ~56 s here (2 shared cores); the
#: suite runs 12 and scripts/bench_reload.py runs the full count
RELOADS_UNDER_LOAD = 12
#: entries carried through reloads here (the benchmark carries 200,000)
ENTRIES = 3000
#: a long rate period keeps rates comparable across processes: no period rotates
#: during a test, so a rate read later is the same number (issue 6: "compared at the
#: same instant")
TABLE = "type ip size 1m expire 10m store http_req_rate(1h),gpc0,http_req_cnt,conn_cnt"


@pytest.fixture
def masters(tmp_path):
    started: list[Master] = []

    def start(text: str) -> Master:
        cfg = tmp_path / "lb.cfg"
        cfg.write_text(text)
        master = Master(tmp_path, cfg)
        started.append(master)
        master.wait_for("worker #1 (pid")
        return master

    yield start
    for master in started:
        master.stop()
        assert group_pids(master.pid) == []


def ports(n: int) -> list[int]:
    out: set[int] = set()
    while len(out) < n:
        out.add(free_port())
    return sorted(out)


def get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data


def fill_table(master: Master, count: int) -> None:
    """``count`` entries 10.x.y.z with distinct counters and rates, through the master
    CLI's ``@1`` forwarding (the current worker) (many ``;``-separated commands per line)."""
    commands = []
    for i in range(count):
        key = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        commands.append(
            f"set table mypeers/t key {key} data.gpc0 {i} data.http_req_cnt {i * 3 + 1} "
            f"data.http_req_rate {i % 97 + 1} data.conn_cnt {i % 13}"
        )
    for start in range(0, count, 100):
        answer = master.command("@1 " + ";".join(commands[start : start + 100]))
        assert answer.strip() == "", answer[:300]


ENTRY = re.compile(r"^0x[0-9a-f]+: key=(\S+) use=\d+ exp=(\d+) (.*)$")


def table_dump(master: Master) -> dict[str, tuple[int, str]]:
    """key -> (exp, the data fields as text) from ``show table``."""
    out = {}
    for line in master.command("@1 show table mypeers/t").splitlines():
        m = ENTRY.match(line)
        if m:
            out[m.group(1)] = (int(m.group(2)), m.group(3))
    return out


def assert_same_table(before: dict, after: dict) -> None:
    assert sorted(after) == sorted(before)
    changed = {k: (before[k][1], after[k][1]) for k in before if before[k][1] != after[k][1]}
    assert changed == {}
    # the remaining expiry is carried over, never reset to the table's full expire
    assert all(after[k][0] <= before[k][0] for k in before)


def master_fds(master: Master) -> int:
    return len(os.listdir(f"/proc/{master.pid}/fd"))


def fds_settle_to(master: Master, expected: int, timeout: float = 5.0) -> int:
    """The number of the master's open fds once it is ``expected`` (a CLI connection just
    closed by its client may still be open for a moment), or as they are at the timeout."""
    deadline = time.monotonic() + timeout
    while master_fds(master) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return master_fds(master)


def test_reloads_under_load_fail_no_request_and_leak_nothing(masters):
    port, peer = ports(2)
    master = masters(config_text(port, peer_port=peer, table=TABLE))
    fds_at_start = master_fds(master)
    with LoadLoop(port) as load:
        for gen in range(2, RELOADS_UNDER_LOAD + 2):
            master.reload_and_settle(gen)
        ok_before_end = load.ok
    assert load.failures == []
    assert ok_before_end > RELOADS_UNDER_LOAD
    assert len(group_pids(master.pid)) == 2  # the master and exactly one worker
    assert master_fds(master) == fds_at_start
    assert master.output.count("tables handed over to the new worker") == RELOADS_UNDER_LOAD


def test_table_entries_come_through_reloads_with_identical_values(masters):
    port, peer = ports(2)
    master = masters(config_text(port, peer_port=peer, table=TABLE))
    fill_table(master, ENTRIES)
    for _ in range(5):
        status, _ = http_get(None, port)  # counted by traffic: key 127.0.0.1
        assert status.startswith(b"HTTP/1.1 200")
    before = table_dump(master)
    assert len(before) == ENTRIES + 1
    fields = dict(f.split("=") for f in before["127.0.0.1"][1].split())
    assert fields["http_req_cnt"] == "5" and fields["http_req_rate(3600000)"] == "5"
    fields = dict(f.split("=") for f in before["10.0.1.44"][1].split())  # entry 300
    assert fields == {"gpc0": "300", "conn_cnt": "1", "http_req_cnt": "901", "http_req_rate(3600000)": "10"}
    for gen in range(2, 5):
        master.reload_and_settle(gen)
        assert_same_table(before, table_dump(master))


def test_reload_with_a_broken_config_changes_nothing(masters, tmp_path):
    port, peer = ports(2)
    master = masters(config_text(port, peer_port=peer, table=TABLE))
    fill_table(master, 50)
    before = table_dump(master)
    (worker,) = master.workers()
    (tmp_path / "lb.cfg").write_text(config_text(port, peer_port=peer) + "    bogus-keyword here\n")
    master.reload()
    master.wait_for("reload aborted")
    assert "bogus-keyword" in master.output
    assert master.workers() == [worker]
    assert_same_table(before, table_dump(master))
    assert b"\r\n\r\nok" in get(port)


def test_reload_adding_a_frontend_serves_it_at_once_and_removing_closes_it(masters, tmp_path):
    port, peer, extra = ports(3)
    master = masters(config_text(port, peer_port=peer))
    with pytest.raises(OSError):
        get(extra)
    (tmp_path / "lb.cfg").write_text(config_text(port, peer_port=peer, extra_port=extra))
    master.reload()
    master.wait_for("worker #2 (pid")  # ready: the new frontend is served now
    assert get(extra).endswith(b"added")
    assert get(port).endswith(b"ok")
    master.wait_for_single_worker()
    (tmp_path / "lb.cfg").write_text(config_text(port, peer_port=peer))
    master.reload_and_settle(3)
    master.wait_for(f"closed listener ipv4:[127.0.0.1]:{extra}")
    with pytest.raises(OSError):
        get(extra)
    assert get(port).endswith(b"ok")


def test_reload_one_second_after_start_keeps_the_tables(masters):
    port, peer, remote = ports(3)
    # a remote peer that never answers: generation 1 never finishes its own initial
    # resync, and still hands its tables over (unlike HAProxy 2.6)
    text = config_text(port, peer_port=peer, table=TABLE).replace(
        f"    peer me 127.0.0.1:{peer}\n",
        f"    peer me 127.0.0.1:{peer}\n    peer other 127.0.0.1:{remote}\n",
    )
    master = masters(text)
    fill_table(master, 200)
    before = table_dump(master)
    assert len(before) == 200
    master.reload_and_settle(2)
    assert_same_table(before, table_dump(master))


def test_sigterm_to_the_master_stops_every_process(masters):
    port, peer = ports(2)
    master = masters(config_text(port, peer_port=peer))
    master.reload_and_settle(2)
    os.kill(master.pid, signal.SIGTERM)
    assert master.popen.wait(timeout=15) == 0
    assert group_pids(master.pid) == []
    with pytest.raises(OSError):
        get(port)


def test_current_worker_dying_makes_the_master_exit_with_an_error(masters):
    port, peer = ports(2)
    master = masters(config_text(port, peer_port=peer))
    (worker,) = master.workers()
    os.kill(worker, signal.SIGKILL)
    assert master.popen.wait(timeout=15) != 0
    assert "Current worker #1" in master.output
    assert group_pids(master.pid) == []
    assert not os.path.exists(master.cli)


def test_two_reloads_before_the_first_new_worker_is_ready(masters):
    port, peer = ports(2)
    master = masters(config_text(port, peer_port=peer, table=TABLE))
    fds_at_start = master_fds(master)
    fill_table(master, 500)
    master.command("@1 set table mypeers/t key 127.0.0.1 data.http_req_cnt 1000000")  # the load's
    before = table_dump(master)
    with LoadLoop(port) as load:
        master.reload()
        master.wait_for("Reloading: starting a new worker")  # (two signals at once are one)
        master.reload()  # generation 2 is still starting (it takes a second)
        master.wait_for("Reloading: starting a new worker", count=2)
        master.wait_for("worker #3 (pid")
        master.wait_for_single_worker()
    out = master.output
    assert re.search(r"worker #2 \(pid \d+\) is superseded before it was ready", out)
    assert not re.search(r"worker #2 \(pid \d+\) is ready", out)  # it never served
    assert load.failures == [] and load.ok > 0
    assert len(master.workers()) == 1
    assert len(group_pids(master.pid)) == 2  # the master and exactly one worker
    assert fds_settle_to(master, fds_at_start) == fds_at_start
    after = table_dump(master)
    counted, _ = after.pop("127.0.0.1"), before.pop("127.0.0.1")
    assert_same_table(before, after)
    # the entry the load counts came through: never reset, never counted twice (a
    # request answered while a hand-over is under way may be missing: see the report)
    cnt = int(dict(f.split("=") for f in counted[1].split())["http_req_cnt"])
    assert 1_000_000 < cnt <= 1_000_000 + load.ok


def unix_get(path: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data


def test_unix_frontend_bind_is_held_by_the_master_across_reloads(masters, tmp_path):
    port, peer = ports(2)
    path = str(tmp_path / "fe.sock")
    text = config_text(port, peer_port=peer).replace(
        f"    bind 127.0.0.1:{port}\n", f"    bind 127.0.0.1:{port}\n    bind unix@{path} mode 600\n"
    )
    master = masters(text)
    inode = os.stat(path).st_ino
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert unix_get(path).endswith(b"\r\n\r\nok")
    for gen in (2, 3):
        master.reload_and_settle(gen)
        # the very same socket file: the master's socket, handed to each worker (a
        # worker binding it itself would replace the file at every reload)
        assert os.stat(path).st_ino == inode
        assert unix_get(path).endswith(b"\r\n\r\nok")
