"""The two ways users start minilb, end to end: ``twistd -n minilb`` runs the master
(a worker child serves; SIGUSR2 replaces it and the tables of a peers section survive),
and ``minilb -db`` runs one process that also serves the stats socket."""

from __future__ import annotations

import os
import signal
import socket
import time

from tests.support.procs import free_port, process_table, procs_fixture  # noqa: F401  (the procs fixture)
from tests.test_integration_proxy import get, needs_plugin


def stats(port: int, command: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode()


def children(pid: int) -> set[int]:
    return {child for child, _, parent, _ in process_table() if parent == pid}


def wait_until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("condition not met in time")


def config(http: int, cli: int, peer: int) -> str:
    return f"""
global
    stats socket ipv4@127.0.0.1:{cli} level admin
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
peers local
    peer lb1 127.0.0.1:{peer}
    table hits type ip size 1k expire 60s store http_req_cnt
frontend fe
    bind 127.0.0.1:{http}
    http-request track-sc0 src table local/hits
    http-request return status 200 content-type text/plain string "ok"
"""


@needs_plugin
def test_twistd_runs_a_master_whose_worker_is_replaced_on_sigusr2_keeping_tables(procs):
    http, cli, peer = free_port(), free_port(), free_port()
    path = procs.write_config(config(http, cli, peer))
    master = procs.twistd(path, "-L", "lb1", wait_port=http)
    first = wait_until(lambda: children(master.pid))
    for _ in range(3):
        assert get(http, "/")[0].status == 200
    wait_until(lambda: "http_req_cnt=3" in stats(cli, "show table local/hits"))

    os.kill(master.pid, signal.SIGUSR2)

    def replaced():
        now = children(master.pid)
        return now if now and not now & first else None

    second = wait_until(replaced)  # a new worker, the old one gone
    assert len(second) == 1
    assert get(http, "/")[0].status == 200
    # the entry came through the hand-over and counts on
    assert "http_req_cnt=4" in stats(cli, "show table local/hits")


@needs_plugin
def test_minilb_single_process_serves_the_stats_socket(procs):
    http, cli, peer = free_port(), free_port(), free_port()
    path = procs.write_config(config(http, cli, peer))
    proc = procs.minilb("-db", "-L", "lb1", "-f", path, wait_port=http)
    assert not children(proc.pid)  # no master, no worker child
    assert get(http, "/")[0].status == 200
    table = wait_until(lambda: stats(cli, "show table local/hits"))
    assert table.startswith("# table: local/hits, type: ip, size:1024, used:1")
    assert "key=127.0.0.1" in table and "http_req_cnt=1" in table
