"""Benchmark of seamless reloads (issue 6): real ``python -m minilb.master`` on 127.0.0.1.

1. ``--entries`` entries (default 200,000) with gpc0, http_req_cnt, conn_cnt and
   http_req_rate are written into a peers-section table through the master CLI
   (``@1 set table ...``), then ``--reloads`` SIGUSR2 reloads (default 20) are made
   while a probe client sends a request every 10 ms on a keep-alive connection.
2. For each reload: the time from the signal until the new worker is ready and until
   the old worker reports its tables handed over; the longest probe answer during
   the reload (a stall of the serving side); failed probe requests; the CPU time the
   new worker spends from ready to the hand-over and the old one from the signal
   (steadier than wall times on a shared machine).
3. After the reloads the whole table is dumped again and compared with the dump made
   before: counters must be identical; rates too when ``--rate-period`` is long
   enough for no period to rotate during the run (the default 1h; with 10s, rates
   decay between the two dumps and only "never higher" is checked).

    python scripts/bench_reload.py [--entries 200000] [--reloads 20] [--rate-period 1h]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.procs import compile_bytecode  # noqa: E402

from tests.support.procs import free_port  # noqa: E402
from tests.support.reload import IdleClosed, Master, config_text, group_pids, http_get  # noqa: E402
from tests.test_reload_integration import ENTRY  # noqa: E402

WORKER_PID = re.compile(r"worker #(\d+) \(pid (\d+)\)")
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def fill(stats: str, count: int) -> float:
    """Write ``count`` entries with ``set table`` on the worker's stats socket: prompt
    mode keeps one connection, lines of `BATCH` commands go out `WINDOW` at a time
    ahead of their answers (the socket holds at most 64 unanswered lines), and every
    answer must be the bare prompt."""
    t0 = time.monotonic()
    batch, window = 100, 16  # a line stays under the CLI line limit (16 KiB)
    lines = []
    for start in range(0, count, batch):
        cmds = []
        for i in range(start, min(start + batch, count)):
            key = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            cmds.append(
                f"set table mypeers/t key {key} data.gpc0 {i} data.http_req_cnt {i * 3 + 1} "
                f"data.http_req_rate {i % 97 + 1} data.conn_cnt {i % 13}"
            )
        lines.append((";".join(cmds) + "\n").encode())
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(stats)
        s.sendall(b"prompt\n")
        prompts, owed, sent, buf = 0, 1 + count, 0, b""
        while prompts < owed:
            while sent < len(lines) and sent - (prompts - 1) // batch < window:
                s.sendall(lines[sent])
                sent += 1
            data = s.recv(1 << 16)
            if not data:
                raise SystemExit("the stats socket closed during the fill")
            done, _, buf = (buf + data).rpartition(b"\n> ")
            if done.replace(b"\n> ", b"") or not b"\n> ".startswith(buf):
                raise SystemExit(f"set table failed: {(done + buf)[:300]!r}")
            prompts += (done.count(b"\n> ") + 1) if _ else 0
    return time.monotonic() - t0


def dump(master: Master) -> dict[str, tuple[int, dict[str, int]]]:
    out = {}
    for line in master.command("@1 show table mypeers/t", timeout=120).splitlines():
        m = ENTRY.match(line)
        if m:
            fields = dict(f.split("=") for f in m.group(3).split())
            out[m.group(1)] = (int(m.group(2)), {k: int(v) for k, v in fields.items()})
    return out


class Probe:
    """One request every 10 ms on a keep-alive connection; records each answer time."""

    def __init__(self, port: int):
        self.port = port
        self.samples: list[tuple[float, float]] = []  # (sent at, seconds)
        self.failures: list[str] = []
        self.retried = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                try:
                    _, conn = http_get(conn, self.port)
                except IdleClosed:
                    self.retried += 1
                    _, conn = http_get(None, self.port)
            except OSError as exc:
                self.failures.append(repr(exc))
                print(f"probe failure: {exc!r}", file=sys.stderr)
                conn = None
            self.samples.append((t0, time.monotonic() - t0))
            time.sleep(0.01)

    def longest(self, since: float, until: float) -> float:
        return max((d for t, d in self.samples if since <= t <= until), default=0.0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


TRACE = re.compile(r"^\[TRACE\] \((\d+)\) ([\d.]+) ([\d.]+) (.*)$", re.M)

#: the steps of a reload in the order they happen: (label, whose mark, event text);
#: "new"/"old" are the new and the old worker, their marks name the generation
STEPS = (
    ("master wakes up on the signal", "master", "master: reload"),
    ("master checked the configuration", "master", "master: configuration checked"),
    ("master spawned the new worker", "master", "master: worker #{new} spawned"),
    ("new worker process exists (exec)", "new", "process started"),
    ("new worker: interpreter up, main()", "new", "worker #{new}: main"),
    ("new worker checked the configuration", "new", "worker #{new}: configuration checked"),
    ("new worker: imports done", "new", "worker #{new}: imports done"),
    ("new worker: services built", "new", "worker #{new}: services built"),
    ("new worker listens, ready sent", "new", "worker #{new}: ready sent"),
    ("master got ready", "master", "master: worker #{new} ready"),
    ("master told the old worker to soft-stop", "master", "master: worker #{old} told to soft-stop"),
    ("old worker soft-stops", "old", "worker #{old}: soft stop"),
    ("old worker's hand-over link established", "old", "local link established"),
    ("new worker's learning link established", "new", "local link established"),
    ("old worker queued its last teach batch", "old", "teach: all queued"),
    ("new worker got resync finished", "new", "learn: local phase over"),
    ("old worker got the confirm", "old", "handed over"),
    ("old worker exits", "old", "worker #{old}: exit"),
)


def breakdown(output: str, since: float, pids: dict[str, int], old: int, new: int) -> list[tuple]:
    """The reload's steps from the trace lines (``MINILB_RELOAD_TRACE``): (label,
    seconds after ``since`` (wall), CPU seconds of that process then) per step seen."""
    marks = []
    for pid, wall, cpu, event in TRACE.findall(output):
        if float(wall) >= since - 0.001:
            marks.append((int(pid), float(wall), float(cpu), event))
    rows = []
    for label, who, text in STEPS:
        text = text.format(old=old, new=new)
        for pid, wall, cpu, event in marks:
            if pid == pids[who] and text in event:
                if text == "process started":
                    wall = float(event.rsplit(" ", 1)[1].rstrip(")"))
                    cpu = 0.0
                rows.append((label, wall - since, cpu, who))
                break
    return rows


def print_breakdown(steps_seen: list[list[tuple]]) -> None:
    """Median time of each step after the signal, and the median time since the step
    before (what each step costs), over the reloads."""
    at: dict[str, list[float]] = {}
    gap: dict[str, list[float]] = {}
    for steps in steps_seen:
        previous = 0.0
        for label, when, _, _ in steps:
            at.setdefault(label, []).append(when)
            gap.setdefault(label, []).append(when - previous)
            previous = when
    print("breakdown (median over the reloads; seconds after the signal, and since the step before):")
    for label, _, _ in STEPS:
        if label in at:
            whens, gaps = sorted(at[label]), sorted(gap[label])
            print(f"  {whens[len(whens) // 2]:6.3f}s  (+{gaps[len(gaps) // 2]:.3f}s)  {label}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--reloads", type=int, default=20)
    ap.add_argument("--rate-period", default="1h")
    ap.add_argument("--steps", action="store_true", help="print each reload's steps, not only the medians")
    args = ap.parse_args()
    compile_bytecode()  # the new worker's start-up is part of the hand-over: time it as installed
    tmp = Path(tempfile.mkdtemp(prefix="bench-reload-"))
    port, peer = free_port(), free_port()
    table = (
        f"type ip size {max(args.entries * 2, 1000)} expire 30m "
        f"store http_req_rate({args.rate_period}),gpc0,http_req_cnt,conn_cnt"
    )
    cfg = tmp / "lb.cfg"
    stats = str(tmp / "stats.sock")
    cfg.write_text(config_text(port, peer_port=peer, table=table, stats=stats))
    os.environ["MINILB_RELOAD_TRACE"] = "1"  # the breakdown (minilb.reloadtrace)
    master = Master(tmp, cfg)
    try:
        master.wait_for("worker #1 (pid")
        took = fill(stats, args.entries)
        print(f"filled {args.entries} entries in {took:.1f}s through the stats socket")
        before = dump(master)
        assert len(before) == args.entries, len(before)
        probe = Probe(port)
        probe.start()
        fds = len(os.listdir(f"/proc/{master.pid}/fd"))
        rows = []
        steps_seen: list[list[tuple]] = []
        for gen in range(2, args.reloads + 2):
            handed = master.output.count("tables handed over")
            old_pid = int(dict(WORKER_PID.findall(master.output))[str(gen - 1)])
            old_cpu = old_cpu0 = cpu_seconds(old_pid)
            t0, t0_wall = time.monotonic(), time.time()
            os.kill(master.pid, signal.SIGUSR2)
            ready = handover = new_pid = new_cpu_ready = new_cpu = None
            deadline = t0 + 60
            while time.monotonic() < deadline and (ready is None or handover is None):
                out = master.output
                now = time.monotonic()
                if ready is None and f"worker #{gen} (pid" in out:
                    ready = now - t0
                    new_pid = int(dict(WORKER_PID.findall(out))[str(gen)])
                    new_cpu_ready = cpu_seconds(new_pid)
                if handover is None and out.count("tables handed over") > handed:
                    handover = now - t0
                    new_cpu = cpu_seconds(new_pid) if new_pid else None
                seen = cpu_seconds(old_pid)  # the old worker exits after the hand-over
                old_cpu = seen if seen is not None else old_cpu
                time.sleep(0.005)
            if ready is None or handover is None:
                raise RuntimeError(f"reload {gen - 1}: no hand-over within 60 s")
            master.wait_for_single_worker(60)
            stall = probe.longest(t0, time.monotonic())
            learn = (new_cpu or 0) - (new_cpu_ready or 0)
            teach = (old_cpu or 0) - (old_cpu0 or 0)
            rows.append((gen, ready, handover, stall, learn, teach))
            steps = breakdown(
                master.output, t0_wall, {"master": master.pid, "old": old_pid, "new": new_pid}, gen - 1, gen
            )
            steps_seen.append(steps)
            if args.steps:
                for label, at, cpu, who in steps:
                    print(f"    {at:6.3f}s  {label} ({who} CPU {cpu:.2f}s)")
                for pid, wall, _, event in TRACE.findall(master.output):
                    if float(wall) >= t0_wall and "peers link to" in event and int(pid) in (old_pid, new_pid):
                        print(f"    {'new' if int(pid) == new_pid else 'old'} worker: {event}")
            print(
                f"reload {gen - 1:2d}: ready {ready:.2f}s, tables handed over {handover:.2f}s "
                f"after the signal; longest probe answer {stall * 1000:.0f} ms; CPU from ready to "
                f"handed over: new worker {learn:.2f}s, old worker {teach:.2f}s from the signal"
            )
        probe.stop()
        after = dump(master)
        counters_differ = rates_differ = rates_higher = 0
        for key, (_, fields) in before.items():
            other = after.get(key, (0, {}))[1]
            for name, value in fields.items():
                if name.startswith("http_req_rate"):
                    rates_differ += other.get(name) != value
                    rates_higher += (other.get(name) or 0) > value
                else:
                    counters_differ += other.get(name) != value
        handovers = [r[2] for r in rows]
        print(f"entries before {len(before)}, after {len(after)} (one of them the probe's own)")
        print(
            f"counter values differing: {counters_differ}; rates differing: {rates_differ} "
            f"(higher than before: {rates_higher})"
        )
        print(
            f"hand-over from the signal: median {sorted(handovers)[len(handovers) // 2]:.2f}s, "
            f"max {max(handovers):.2f}s; longest probe answer {max(r[3] for r in rows) * 1000:.0f} ms"
        )
        learns, teaches = sorted(r[4] for r in rows), sorted(r[5] for r in rows)
        print(
            f"hand-over CPU (median): new worker {learns[len(learns) // 2]:.2f}s from ready, "
            f"old worker {teaches[len(teaches) // 2]:.2f}s from the signal"
        )
        print_breakdown(steps_seen)
        print(
            f"probe: {len(probe.samples)} requests, {len(probe.failures)} failed, "
            f"{probe.retried} retried after an idle close"
        )
        time.sleep(1)  # let the master close the CLI connections of the dump
        print(
            f"master fds before {fds}, after {len(os.listdir(f'/proc/{master.pid}/fd'))}; "
            f"processes in the group: {len(group_pids(master.pid))}"
        )
        missing = sum(key not in after for key in before)  # after also holds the probe's key
        ok = missing == 0 and counters_differ == 0 and not probe.failures
        return 0 if ok else 1
    except BaseException:
        print("master output (end):\n" + master.output[-4000:], file=sys.stderr)
        raise
    finally:
        master.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
