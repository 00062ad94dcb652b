"""The pure parts of scripts/bench_resync.py and scripts/bench/resync_node.py: the lag
probe, the speed-up recorder, reading /proc/net/tcp, and the stall window."""

from __future__ import annotations

import importlib
import json

from twisted.internet import task

import minilb.speedups
from tests.support.bench import SCRIPTS, resync_node

bench_resync = importlib.import_module("bench_resync")  # scripts/bench_resync.py (SCRIPTS is on sys.path)
assert bench_resync.__file__ == str(SCRIPTS / "bench_resync.py")


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def probe_with(report_s: float = 0.005):
    clock = task.Clock()
    wall, cpu = FakeTime(), FakeTime()
    events = []
    ticks = []
    probe = resync_node.LagProbe(
        clock,
        0.010,
        report_s,
        on_tick=ticks.append,
        emit=lambda event, **fields: events.append((event, fields)),
        clock=wall,
        cpu=cpu,
    )
    probe.start()
    return clock, wall, cpu, events, ticks


def test_a_timer_on_time_reports_nothing():
    clock, wall, _, events, ticks = probe_with()
    for _ in range(3):
        wall.now += 0.010
        clock.advance(0.010)
    assert events == []
    assert len(ticks) == 3


def test_a_late_timer_reports_its_lateness_and_the_cpu_spent_meanwhile():
    clock, wall, cpu, events, _ = probe_with()
    wall.now += 0.050  # fired 40 ms late...
    cpu.now += 0.030  # ...after 30 ms of CPU on the reactor's thread
    clock.advance(0.010)
    assert events == [("lag", {"lag_ms": 40.0, "cpu_ms": 30.0, "end": wall.now})]


def test_the_cpu_figure_is_capped_at_the_lateness():
    clock, wall, cpu, events, _ = probe_with()
    wall.now += 0.020  # 10 ms late, 20 ms of CPU: at most 10 of them delayed the timer
    cpu.now += 0.020
    clock.advance(0.010)
    assert [fields["cpu_ms"] for _, fields in events] == [10.0]


def test_lateness_under_the_threshold_is_not_reported():
    clock, wall, _, events, _ = probe_with(report_s=0.005)
    wall.now += 0.014
    clock.advance(0.010)
    assert events == []


def test_every_speedups_load_is_reported(monkeypatch, capsys):
    monkeypatch.setattr(minilb.speedups, "load", lambda name, api: object() if name == "built" else None)
    resync_node._record_speedups()
    assert minilb.speedups.load("built", 1) is not None
    assert minilb.speedups.load("missing", 2) is None
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"event": "speedup", "name": "built", "api": 1, "compiled": True},
        {"event": "speedup", "name": "missing", "api": 2, "compiled": False},
    ]


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0
   3: 0100007F:1F91 0100007F:C351 06 00000000:00000000 03:00000C06 00000000     0        0 0 3 0
"""


def test_a_connection_counts_once_the_listening_side_accepted_it():
    # port 8080 (0x1F90) has a connection in its backlog (inode 0) and a listener
    assert not bench_resync.accepted_between({8080}, PROC_NET_TCP)
    backlog = (
        "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0"
    )
    assert backlog in PROC_NET_TCP
    accepted = PROC_NET_TCP.replace(backlog, backlog.replace(" 0 1 0", " 333 1 0"))
    assert bench_resync.accepted_between({8080}, accepted)
    # the dialling side's own entry (local port 50000) is not a listening port; TIME_WAIT never counts
    assert not bench_resync.accepted_between({8081}, accepted)


class Events:
    kind = "minilb"

    def __init__(self, events):
        self._events = events

    def events(self):
        return self._events


def test_the_longest_stall_is_taken_over_the_window_only():
    node = Events(
        [
            {"event": "ready"},
            {"event": "lag", "lag_ms": 90.0, "cpu_ms": 80.0, "end": 9.0},  # before
            {"event": "lag", "lag_ms": 30.0, "cpu_ms": 5.0, "end": 10.02},  # began before, ended inside
            {"event": "lag", "lag_ms": 20.0, "cpu_ms": 12.0, "end": 11.0},
            {"event": "lag", "lag_ms": 70.0, "cpu_ms": 70.0, "end": 12.5},  # began after
            {"event": "gc", "gen": 2, "ms": 35.0, "end": 10.01},  # began before, ended inside
            {"event": "gc", "gen": 2, "ms": 80.0, "end": 12.5},  # began after
        ]
    )
    assert bench_resync.longest_lag(node, 10.0, 12.0) == (30.0, 12.0)
    assert bench_resync.longest_gc(node, 10.0, 12.0) == 35.0
    assert bench_resync.longest_gc(node, 20.0, 21.0) == 0.0
    assert bench_resync.longest_lag(node, 20.0, 21.0) == (0.0, 0.0)
    node.kind = "haproxy"
    assert bench_resync.longest_lag(node, 10.0, 12.0) == (None, None)
    assert bench_resync.longest_gc(node, 10.0, 12.0) is None


def test_collections_of_the_cycle_collector_are_timed():
    events = []
    clock = FakeTime()
    pauses = resync_node.GcPauses(
        0.005, emit=lambda event, **fields: events.append((event, fields)), clock=clock, monotonic=lambda: 7.0
    )
    pauses("start", {"generation": 0})
    clock.now += 0.001
    pauses("stop", {"generation": 0})  # 1 ms: under the threshold
    pauses("start", {"generation": 2})
    clock.now += 0.040
    pauses("stop", {"generation": 2})
    assert events == [("gc", {"gen": 2, "ms": 40.0, "end": 7.0})]


def row(pair: str, seconds: float, teacher_cpu: float, learner_cpu: float, **extra) -> dict:
    return {
        "pair": pair,
        "seconds": seconds,
        "from_start": seconds + 1,
        "teacher_cpu": teacher_cpu,
        "learner_cpu": learner_cpu,
        "cpu_floor": max(teacher_cpu, learner_cpu),
        "others": 0.25,
        **extra,
    }


def test_the_report_gives_medians_and_ratios_to_haproxy():
    results = [
        row("minilb -> minilb", 4.0, 2.0, 3.0, teacher_stall_ms=12.0, teacher_stall_cpu_ms=9.0),
        row("minilb -> minilb", 6.0, 2.5, 4.0, teacher_stall_ms=60.4, teacher_stall_cpu_ms=20.2),
        row("minilb -> minilb", 5.0, 2.2, 3.5, learner_stall_ms=3.0, learner_stall_cpu_ms=3.0),
        row("haproxy -> haproxy", 0.5, 0.3, 0.7),
        row("haproxy -> haproxy", 0.5, 0.3, 0.7),
        {"pair": "haproxy -> haproxy", "error": "not complete"},  # a failed round is left out
    ]
    lines = bench_resync.report(results, 1000, 3).splitlines()
    by_pair = {line[:20].strip(): line[20:].split() for line in lines[2:]}
    # wall, x, floor, x, from start, teacher CPU, learner CPU, others, stalls
    assert by_pair["minilb -> minilb"] == [
        "5.00", "10.00x", "3.50", "5.00x", "6.00", "2.20", "3.50", "25%", "60(20)", "<5",
    ]  # fmt: skip
    assert by_pair["haproxy -> haproxy"] == [
        "0.50",
        "1.00x",
        "0.70",
        "1.00x",
        "1.50",
        "0.30",
        "0.70",
        "25%",
        "-",
        "-",
    ]
    assert by_pair["minilb -> haproxy"] == ["failed"]
