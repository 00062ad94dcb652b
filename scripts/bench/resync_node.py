"""One minilb peer for `scripts/bench_resync.py`: the worker's own objects on a generated
haproxy.cfg, its table optionally filled in memory before any peer socket opens.

    python scripts/bench/resync_node.py -f CFG -L NAME [--fill N --table NAME]

It builds what ``minilb CFG`` builds in a single process (`minilb.cli.StandaloneWorker`:
the listeners bound up front, then a `minilb.worker.process.WorkerProcess` with its
`WorkerService` tables, stats sockets and one `PeersService` per peers section), except
that between building the tables and starting the worker it fills ``--fill`` entries
``10.0.0.0 + i`` (gpc0 = i, http_req_rate = i % 97 + 1) through `StickTable`'s API, as
``set table`` on the stats socket would, which is much faster than the socket.

It reports on stdout, one JSON object per line (``event`` says which):
- ``speedup``: every `minilb.speedups.load` call made in this process (name, api and
  whether the compiled module came back), as it happens;
- ``ready``: the pid, the fill's count and seconds, once the reactor runs;
- ``lag``: every time a 10 ms timer of the reactor fired at least ``--lag-report-ms``
  late (``lag_ms``; ``cpu_ms``, how much of that the reactor's thread spent on the CPU,
  see `LagProbe`; ``end``, the `time.monotonic` of that late tick, which is the same
  clock in every process of the machine);
- ``gc``: every collection of the cycle collector that took at least
  ``--lag-report-ms`` (``gen``, ``ms``, ``end``): one cause of a late timer;
- ``synced``: once every peers section has its resync done (``t``, monotonic).
The rest of the output is the worker's log.  SIGTERM stops at once.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import minilb.speedups  # noqa: E402


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _record_speedups() -> None:
    """Report each `minilb.speedups.load` call; installed before anything else of
    minilb is imported, so that modules binding ``load`` at import time get this one."""
    real_load = minilb.speedups.load

    def load(name: str, api: int):
        module = real_load(name, api)
        emit("speedup", name=name, api=api, compiled=module is not None)
        return module

    minilb.speedups.load = load


def fill(table, count: int) -> float:
    """``count`` entries 10.0.0.0 + i with gpc0 = i and http_req_rate = i % 97 + 1, each
    a local change as a ``set table`` would make it; returns the seconds it took."""
    began = time.perf_counter()
    get_or_create, put, touch = table.get_or_create, table.set, table.touch_local
    for i in range(count):
        row = get_or_create(0x0A000000 + i)
        if row is None:
            raise SystemExit(f"table '{table.name}' is full after {i} entries")
        put(row, "gpc0", i)
        put(row, "http_req_rate", i % 97 + 1)
        touch(row)
    return time.perf_counter() - began


class LagProbe:
    """A timer every ``interval`` s that reports (`emit`) how late it fired when that is
    at least ``report`` s: the reactor was busy meanwhile, or the process was not
    scheduled (a busy machine).  ``cpu_ms`` tells them apart: the CPU time the reactor's
    thread used since the previous tick, capped at the lateness (an upper bound of the
    work that delayed the timer)."""

    def __init__(
        self,
        reactor,
        interval: float,
        report: float,
        on_tick=None,
        *,
        emit=emit,
        clock=time.monotonic,
        cpu=time.thread_time,
    ):
        self.reactor = reactor
        self.interval = interval
        self.report = report
        self.on_tick = on_tick
        self.emit = emit
        self.clock = clock  # the machine-wide monotonic clock the benchmark compares with
        self.cpu = cpu  # CPU time of the reactor's thread
        self._due = 0.0
        self._cpu = 0.0

    def start(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        self._due = self.clock() + self.interval
        self._cpu = self.cpu()
        self.reactor.callLater(self.interval, self._tick)

    def _tick(self) -> None:
        now = self.clock()
        late = now - self._due
        if late >= self.report:
            spent = min(late, self.cpu() - self._cpu)
            self.emit("lag", lag_ms=round(late * 1000, 2), cpu_ms=round(spent * 1000, 2), end=now)
        if self.on_tick is not None:
            self.on_tick(now)
        self._schedule()


class GcPauses:
    """Reports (`emit`) every collection of the cycle collector that took at least
    ``report`` s: ``gc`` events with the generation, ``ms`` and ``end`` (monotonic)."""

    def __init__(self, report: float, *, emit=emit, clock=time.perf_counter, monotonic=time.monotonic):
        self.report = report
        self.emit = emit
        self.clock = clock
        self.monotonic = monotonic
        self._began = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = self.clock()
            return
        took = self.clock() - self._began
        if took >= self.report:
            self.emit("gc", gen=info.get("generation"), ms=round(took * 1000, 2), end=self.monotonic())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-f", dest="config", required=True)
    ap.add_argument("-L", dest="localpeer", required=True)
    ap.add_argument("--fill", type=int, default=0, help="entries to create before the peers start")
    ap.add_argument("--table", default="bench", help="the table --fill fills")
    ap.add_argument("--lag-interval-ms", type=float, default=10.0)
    ap.add_argument("--lag-report-ms", type=float, default=5.0)
    args = ap.parse_args(argv)
    _record_speedups()

    from minilb.check import check_config
    from minilb.config.render import render_diagnostic

    result = check_config([args.config], localpeer=args.localpeer, environ=os.environ)
    if not result.ok:
        for diag in result.diagnostics:
            print(render_diagnostic(diag), file=sys.stderr)
        return 1
    config = result.config

    from minilb.tcp.reactor import install_if_unset

    install_if_unset()  # the reactor a worker runs on
    from twisted.internet import reactor

    from minilb.master.control import listener_specs
    from minilb.master.sockets import Listeners
    from minilb.worker.process import WorkerProcess

    def log(level: str, message: str) -> None:
        print(f"[{level.upper()}] {message}", file=sys.stderr, flush=True)

    # as minilb.cli.StandaloneWorker.startService, with the fill between building and starting
    listeners = Listeners()
    specs = listener_specs(config)
    listeners.prepare(specs.values())
    fds = {key: listeners.fileno(key) for key in specs}
    worker = WorkerProcess(config, reactor, fds, log=log)
    filled_s = 0.0
    if args.fill:
        table = worker.service.tables.get(args.table)
        if table is None:
            raise SystemExit(f"no table '{args.table}' in {args.config}")
        filled_s = fill(table, args.fill)
    worker.start()

    state = {"synced": False}

    def check_synced(now: float) -> None:
        if not state["synced"] and all(p.sync.synced for p in worker.peers):
            state["synced"] = True
            emit("synced", t=now)

    probe = LagProbe(reactor, args.lag_interval_ms / 1000, args.lag_report_ms / 1000, on_tick=check_synced)

    def started() -> None:
        gc.callbacks.append(GcPauses(args.lag_report_ms / 1000))
        # the probe starts behind the worker's one-off start-up collection (the
        # callLater(0) of minilb.tcp.reactor.tune_collector, scheduled earlier): that
        # pause is reported as a ``gc`` event, not as a stall of the running reactor
        reactor.callLater(0, probe.start)
        emit("ready", pid=os.getpid(), filled=args.fill, fill_s=round(filled_s, 3))

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # the benchmark is over: no hand-over
    reactor.callWhenRunning(started)
    reactor.run(installSignalHandlers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
