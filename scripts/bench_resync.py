"""Benchmark of a full peers resync between real processes over TCP on 127.0.0.1 (issue 5):
minilb -> minilb, minilb -> haproxy and haproxy -> haproxy, side by side, in one run.

    python scripts/bench_resync.py [--entries 1000000 | --quick] [--rounds 3] [--json OUT]

Two teachers hold N entries of a ``type ip`` table storing ``http_req_rate(10s),gpc0``
(keys 10.0.0.0 + i, gpc0 = i, http_req_rate = i % 97 + 1, expire 30m):
- the minilb teacher is `scripts/bench/resync_node.py`, the worker's own objects on the
  generated haproxy.cfg, its table filled in memory (`StickTable` API, as ``set table``
  does) before its peer listener opens;
- the haproxy teacher is filled through its stats socket: one ``prompt`` session with
  the ``set table`` lines pipelined (written by a thread while the answers are read).
Both teachers wait until they consider their own start-up resync over (``show peers``
flags 0x2), as a long-running process would.  Then, for each round and each pair, a
fresh empty learner is started (minilb: resync_node.py without fill; haproxy: ``haproxy
-db``), it dials the teacher and asks for a full resync, and is stopped afterwards.

What is timed, per pair: from the moment the first TCP connection between learner and
teacher is established and accepted by the listening side (/proc/net/tcp polled every
2 ms after the learner is started; whichever side dialled) until the first ``show
table`` on the learner's stats socket (polled every 10 ms) that answers ``used:N``; the
answer's arrival time counts, so a learner too busy to answer is charged for it.  The
time from the learner's start is shown too.  CPU seconds are each process's user +
system time (/proc/PID/stat, all threads) over the same window; the CPU floor is the
larger of the two; "others" is the share of the machine's CPUs (/proc/stat) that other
processes took meanwhile (the machine is shared: read wall times with it).
The longest stall of a minilb side is the latest a 10 ms reactor timer fired in that
window (resync_node.py's lag probe; "<5" below 5 ms), with in brackets the CPU time the
reactor's thread spent meanwhile: on a busy machine a timer is also late because the
process was not scheduled, which only the wall figure counts.  The longest pause of
the cycle collector in the window is shown per round: for a new minilb learner that is
the worker's one-off start-up ``gc.collect()`` + ``gc.freeze()``
(`minilb.tcp.reactor.tune_collector`), which runs in the reactor's first turn while the
first connection comes up; the lag probe starts behind it, so the stall column does
not count it.

After each pair, a few keys (the first, the last and some random ones) are read with
``show table bench key K`` on the teacher, the learner, then the teacher again.  The
learner must hold exactly N entries and each key with gpc0 = i; a rate the teacher
still reads as set (i % 97 + 1, its first 10 s period) must be learned exactly.  A rate
already decaying is not compared, only reported ("learned - taught"): the learner dates
an entry by the age the teacher wrote when it encoded it, so the time the bytes spent
in socket buffers and queues makes the learned rate younger (higher) by that much.
The exit status is 1 when any check fails.  Every process is killed and the temporary
directory removed at the end (``--keep-workdir`` keeps it: each process's log, with the
lag and gc events of the minilb ones).  haproxy runs with its default nbthread unless
``--haproxy-threads`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import procs  # noqa: E402

TABLE = "bench"
NODE = HERE / "bench" / "resync_node.py"
CONN_POLL_S = 0.002
USED_POLL_S = 0.010
CLI_TIMEOUT_S = 10.0
FILL_CHUNK = 256 * 1024  # bytes of ``set table`` lines written at once
MAX_CLI_REPLY = 1 << 20

CONFIG = """\
global
    stats socket {sock} level admin
{threads}
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s

peers {section}
{peers}

backend {table}
    stick-table type ip size {size} expire 30m store http_req_rate(10s),gpc0 peers {section}
"""


def key_text(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


# ---------------------------------------------------------------------------- nodes
class Node:
    """One process of the benchmark: its name (the local peer name), kind, config and
    stats socket, and the process once started."""

    def __init__(self, name: str, kind: str, tmp: Path):
        self.name = name
        self.kind = kind  # "minilb" or "haproxy"
        self.port = procs.free_port()
        self.sock = str(tmp / f"{name}.sock")
        self.cfg = tmp / f"{name}.cfg"
        self.managed: procs.Managed | None = None
        self.starts = 0
        self.pids: list[int] = []  # of every start

    def start(self, registry: procs.ProcessRegistry, argv: list[str]) -> None:
        """Start this node's process (a learner is started once per round: each start
        gets its own log, where resync_node.py's events are read)."""
        self.starts += 1
        self.managed = registry.start(f"{self.name}-{self.starts}", argv, cwd=str(HERE.parent))
        self.pids.append(self.managed.pid)

    @property
    def pid(self) -> int:
        assert self.managed is not None
        return self.managed.pid

    def write_config(self, section: str, members: list[Node], size: int, threads: int | None) -> None:
        peers = "\n".join(f"    peer {m.name} 127.0.0.1:{m.port}" for m in members)
        self.cfg.write_text(
            CONFIG.format(
                sock=self.sock,
                threads=f"    nbthread {threads}" if threads and self.kind == "haproxy" else "",
                section=section,
                peers=peers,
                table=TABLE,
                size=size,
            )
        )

    def events(self) -> list[dict]:
        """The JSON lines a resync_node.py printed so far."""
        out = []
        if self.managed is None:
            return out
        try:
            text = self.managed.log_path.read_text(errors="replace")
        except OSError:
            return out
        for line in text.splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


def cli(path: str, command: str, timeout: float = CLI_TIMEOUT_S) -> str:
    """One command on a stats socket (HAProxy's or minilb's), its whole answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
            if len(out) > MAX_CLI_REPLY:
                raise RuntimeError(f"answer to {command!r} over {MAX_CLI_REPLY} bytes")
    return out.decode(errors="replace")


USED = re.compile(r"# table: (\S+), .*used:(\d+)")


def table_used(node: Node) -> int | None:
    """``used:N`` of the bench table from ``show table`` (headers only); None when the
    socket does not answer yet."""
    try:
        text = cli(node.sock, "show table")
    except OSError:
        return None
    for name, used in USED.findall(text):
        if name == TABLE:
            return int(used)
    return None


SECTION_FLAGS = re.compile(r"id=(\S+) disabled=\d+ flags=0x([0-9a-fA-F]+)")


def resync_done(node: Node, section: str) -> bool:
    """Whether ``show peers`` gives the section the flag 0x2 (remote resync over)."""
    try:
        text = cli(node.sock, f"show peers {section}")
    except OSError:
        return False
    for name, flags in SECTION_FLAGS.findall(text):
        if name == section:
            return bool(int(flags, 16) & 0x2)
    return False


FIELD = re.compile(r" (gpc0|http_req_rate\(\d+\))=(\d+)")


def read_entry(node: Node, key: str) -> dict[str, int] | None:
    text = cli(node.sock, f"show table {TABLE} key {key}")
    for line in text.splitlines():
        if f"key={key} " in line:
            return {name.split("(")[0]: int(value) for name, value in FIELD.findall(line)}
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = procs.parse_proc_stat(f.read())
    except OSError:
        return None
    return stat.own_ticks / procs.CLOCK_TICKS_PER_S


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs together so far (/proc/stat's ``cpu`` line;
    busy counts user, nice, system and hypervisor steal, as `procs.CpuTimes` does)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    times = procs.CpuTimes(*(int(v) for v in fields[1:9]))
    return times.running_tasks, times.total


def accepted_between(ports: set[int], proc_net_tcp: str | None = None) -> bool:
    """Whether /proc/net/tcp (or the text given) holds an ESTABLISHED connection to one
    of the listening ``ports`` that its process has accepted (a socket still in the
    listen backlog has inode 0: a learner binds its listener before its reactor runs)."""
    if proc_net_tcp is None:
        with open("/proc/net/tcp") as f:
            proc_net_tcp = f.read()
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "01" or fields[9] == "0":
            continue
        if int(fields[1].rsplit(":", 1)[1], 16) in ports:
            return True
    return False


# ---------------------------------------------------------------------------- starting
def start_haproxy(registry: procs.ProcessRegistry, node: Node, haproxy: str, wait: bool = True) -> None:
    node.start(registry, [haproxy, "-f", str(node.cfg), "-L", node.name, "-db"])
    if wait:
        wait_for_cli(node, 20.0)


def wait_for_cli(node: Node, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if table_used(node) is not None:
            return
        if node.managed is not None and node.managed.popen.poll() is not None:
            raise procs.StartError(f"{node.name} exited:\n{node.managed.log_tail()}")
        time.sleep(0.02)
    raise procs.StartError(f"{node.name}: no stats socket within {timeout:.0f} s")


def fill_haproxy(node: Node, count: int) -> float:
    """``count`` ``set table`` commands on one ``prompt`` session, written by a thread while
    the prompts are read back; returns the seconds it took."""
    began = time.monotonic()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(node.sock)
        s.sendall(b"prompt\n")
        failure: list[BaseException] = []

        def writer() -> None:
            try:
                lines: list[str] = []
                size = 0
                for i in range(count):
                    line = (
                        f"set table {TABLE} key {key_text(i)} data.gpc0 {i} data.http_req_rate {i % 97 + 1}\n"
                    )
                    lines.append(line)
                    size += len(line)
                    if size >= FILL_CHUNK:
                        s.sendall("".join(lines).encode())
                        lines, size = [], 0
                s.sendall(("".join(lines) + "quit\n").encode())
            except OSError as exc:
                failure.append(exc)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        prompts = 0
        other = bytearray()
        tail = b""
        while chunk := s.recv(1 << 20):
            data = tail + chunk
            prompts += data.count(b"\n> ") - tail.count(b"\n> ")
            tail = data[-2:]
            if len(other) < 4096:
                other += chunk.replace(b"\n> ", b"").replace(b"> ", b"").strip()[:4096]
        thread.join(timeout=60)
    if failure:
        raise RuntimeError(f"filling {node.name} failed: {failure[0]}")
    if other.strip():
        raise RuntimeError(f"filling {node.name}: set table answered {bytes(other[:300])!r}")
    used = table_used(node)
    if used != count:
        raise RuntimeError(f"filling {node.name}: {used} entries instead of {count} ({prompts} prompts)")
    return time.monotonic() - began


def wait_resync_done(node: Node, section: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if resync_done(node, section):
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------- one resync
def longest_lag(node: Node, since: float, until: float) -> tuple[float, float] | tuple[None, None]:
    """(wall, CPU) ms of the latest a minilb node's probe fired overlapping [since, until]
    (0.0 when never late by the report threshold); the CPU figure is the largest
    ``cpu_ms`` of those events (see resync_node.LagProbe).  (None, None) for haproxy."""
    if node.kind != "minilb":
        return None, None
    wall = cpu = 0.0
    for event in node.events():
        if event.get("event") != "lag":
            continue
        end, lag = event["end"], event["lag_ms"] / 1000
        if end >= since and end - lag <= until:
            wall = max(wall, event["lag_ms"])
            cpu = max(cpu, event["cpu_ms"])
    return wall, cpu


def longest_gc(node: Node, since: float, until: float) -> float | None:
    """The longest cycle-collector pause (ms) a minilb node reported inside [since,
    until] (0.0 when none reached the report threshold); None for haproxy."""
    if node.kind != "minilb":
        return None
    pauses = [
        e["ms"]
        for e in node.events()
        if e.get("event") == "gc" and since <= e["end"] and e["end"] - e["ms"] / 1000 <= until
    ]
    return max(pauses, default=0.0)


def sample_keys(count: int, samples: int, rng: random.Random) -> list[int]:
    picks = {0, count - 1}
    while len(picks) < min(count, samples):
        picks.add(rng.randrange(count))
    return sorted(picks)


def compare(teacher: Node, learner: Node, keys: list[int]) -> tuple[list[str], int, list[int]]:
    """Compare the sampled keys (see the module docstring): (mismatches, rates checked,
    learned - taught of the rates that were decaying)."""
    problems = []
    checked = 0
    drift = []
    for i in keys:
        key = key_text(i)
        before = read_entry(teacher, key)
        learned = read_entry(learner, key)
        after = read_entry(teacher, key)
        if before is None or after is None:
            problems.append(f"{key}: missing on the teacher")
            continue
        if learned is None:
            problems.append(f"{key}: missing on the learner")
            continue
        if learned.get("gpc0") != before.get("gpc0") or before.get("gpc0") != i:
            problems.append(f"{key}: gpc0 {learned.get('gpc0')} learned, {before.get('gpc0')} taught")
        rate, set_rate = learned.get("http_req_rate"), i % 97 + 1
        if before.get("http_req_rate") == after.get("http_req_rate") == set_rate:
            checked += 1
            if rate != set_rate:
                problems.append(f"{key}: http_req_rate {rate} learned, {set_rate} taught")
        elif rate is not None and after.get("http_req_rate") is not None:
            drift.append(rate - after["http_req_rate"])
    return problems, checked, drift


def resync(
    registry: procs.ProcessRegistry,
    teacher: Node,
    learner: Node,
    section: str,
    *,
    entries: int,
    haproxy: str,
    timeout: float,
    keys: list[int],
) -> dict:
    """Start ``learner`` empty, time its full resync from ``teacher``, check it, stop it."""
    Path(learner.sock).unlink(missing_ok=True)
    ports = {teacher.port, learner.port}
    started = time.monotonic()
    if learner.kind == "minilb":
        argv = [sys.executable, str(NODE), "-f", str(learner.cfg), "-L", learner.name]
        learner.start(registry, argv)
    else:
        start_haproxy(registry, learner, haproxy, wait=False)
    result: dict = {
        "pair": f"{teacher.kind} -> {learner.kind}",
        "teacher": teacher.name,
        "learner": learner.name,
        "entries": entries,
    }
    try:
        deadline = started + timeout
        connected = done = None
        cpu0 = cpu1 = (None, None)
        used = None
        while time.monotonic() < deadline:
            if learner.managed.popen.poll() is not None:
                raise RuntimeError(f"{learner.name} exited:\n{learner.managed.log_tail()}")
            if connected is None:
                if accepted_between(ports):
                    connected = time.monotonic()
                    cpu0 = (cpu_seconds(teacher.pid), cpu_seconds(learner.pid))
                    machine0 = machine_ticks()
                else:
                    time.sleep(CONN_POLL_S)
                continue
            used = table_used(learner)
            if used is not None and used >= entries:
                done = time.monotonic()
                cpu1 = (cpu_seconds(teacher.pid), cpu_seconds(learner.pid))
                machine1 = machine_ticks()
                break
            time.sleep(USED_POLL_S)
        if done is None:
            result["error"] = (
                f"not complete within {timeout:.0f} s (used {used}, connected {connected is not None})"
            )
            return result
        result["seconds"] = done - connected
        result["connected_at"], result["done_at"] = connected, done  # time.monotonic()
        result["from_start"] = done - started
        if None not in cpu0 and None not in cpu1:
            result["teacher_cpu"] = cpu1[0] - cpu0[0]
            result["learner_cpu"] = cpu1[1] - cpu0[1]
            result["cpu_floor"] = max(result["teacher_cpu"], result["learner_cpu"])
            busy, total = (after - before for after, before in zip(machine1, machine0, strict=True))
            ours = (result["teacher_cpu"] + result["learner_cpu"]) * procs.CLOCK_TICKS_PER_S
            if total > 0:
                result["others"] = min(1.0, max(0.0, (busy - ours) / total))
        result["synced"] = wait_resync_done(learner, section, 10.0)
        result["mismatches"], result["rates_checked"], result["rate_drift"] = compare(teacher, learner, keys)
        result["sampled"] = len(keys)
        result["used"] = settled_count(learner, entries)
        if learner.kind == "minilb":
            synced = [e["t"] for e in learner.events() if e.get("event") == "synced"]
            if synced:
                result["synced_after"] = synced[0] - connected
        result["teacher_stall_ms"], result["teacher_stall_cpu_ms"] = longest_lag(teacher, connected, done)
        result["learner_stall_ms"], result["learner_stall_cpu_ms"] = longest_lag(learner, connected, done)
        result["teacher_gc_ms"] = longest_gc(teacher, connected, done)
        result["learner_gc_ms"] = longest_gc(learner, connected, done)
        result["learner_speedups"] = speedups_of(learner)
        return result
    finally:
        registry.stop(learner.managed)


def settled_count(node: Node, entries: int, timeout: float = 3.0) -> int | None:
    """The learner's entry count once it reads ``entries`` (within ``timeout``), else the
    last reading: haproxy counts an update of an existing key as one more entry for a
    moment, and a haproxy teacher pushes every entry once more after the resync."""
    deadline = time.monotonic() + timeout
    used = table_used(node)
    while used != entries and time.monotonic() < deadline:
        time.sleep(0.02)
        used = table_used(node)
    return used


def speedups_of(node: Node) -> dict[str, bool] | None:
    """``{name: compiled}`` of every `minilb.speedups.load` a minilb node made."""
    if node.kind != "minilb":
        return None
    return {e["name"]: e["compiled"] for e in node.events() if e.get("event") == "speedup"}


# ---------------------------------------------------------------------------- report
PAIRS = ("minilb -> minilb", "minilb -> haproxy", "haproxy -> haproxy")


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _stall(row: dict, side: str) -> str:
    """``wall(cpu)`` ms of one side's longest stall; "<5" below the probe's threshold."""
    wall, cpu = row.get(f"{side}_stall_ms"), row.get(f"{side}_stall_cpu_ms")
    if wall is None:
        return "-"
    if wall < 5:
        return "<5"
    return f"{wall:.0f}({cpu:.0f})"


def _gc(ms: float | None) -> str:
    if ms is None:
        return "-"
    return "<5" if ms < 5 else f"{ms:.0f}"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f}%"


def median_of(rows: list[dict], field: str) -> float | None:
    values = [r[field] for r in rows if r.get(field) is not None]
    return statistics.median(values) if values else None


def worst_stall(rows: list[dict], side: str) -> dict:
    """The round with the longest wall stall of ``side``, as far as `_stall` reads it."""
    rows = [r for r in rows if r.get(f"{side}_stall_ms") is not None]
    return max(rows, key=lambda r: r[f"{side}_stall_ms"]) if rows else {}


def _ratio(value: float | None, reference: float | None) -> str:
    return f"{value / reference:.2f}x" if value is not None and reference else "-"


def report(results: list[dict], entries: int, rounds: int) -> str:
    """The summary table: per pair the medians over the rounds, the worst stalls."""
    by_pair = {pair: [r for r in results if r["pair"] == pair and "seconds" in r] for pair in PAIRS}
    reference = median_of(by_pair["haproxy -> haproxy"], "seconds")
    reference_floor = median_of(by_pair["haproxy -> haproxy"], "cpu_floor")
    lines = [
        f"full resync of {entries:,} entries over TCP on 127.0.0.1, median of {rounds} round(s): wall s "
        "from connect to used:N; CPU floor: the larger of teacher and learner CPU s over that window (the "
        "wall time on two otherwise idle cores if neither waited for the other); others: the share of the "
        "machine's CPUs other processes took meanwhile; longest stall of a minilb reactor over all rounds "
        "(ms late of a 10 ms timer, in brackets the CPU it spent meanwhile)",
        f"{'pair':<20} {'wall s':>7} {'x haproxy':>9} {'CPU floor':>9} {'x haproxy':>9} {'from start':>10} "
        f"{'teacher CPU':>11} {'learner CPU':>11} {'others':>6} {'stall teacher':>13} {'stall learner':>13}",
    ]
    for pair in PAIRS:
        rows = by_pair[pair]
        if not rows:
            lines.append(f"{pair:<20} {'failed':>7}")
            continue
        wall, floor = median_of(rows, "seconds"), median_of(rows, "cpu_floor")
        lines.append(
            f"{pair:<20} {wall:>7.2f} {_ratio(wall, reference):>9} {_fmt(floor, '.2f'):>9} "
            f"{_ratio(floor, reference_floor):>9} {_fmt(median_of(rows, 'from_start'), '.2f'):>10} "
            f"{_fmt(median_of(rows, 'teacher_cpu'), '.2f'):>11} {_fmt(median_of(rows, 'learner_cpu'), '.2f'):>11} "
            f"{_percent(median_of(rows, 'others')):>6} "
            f"{_stall(worst_stall(rows, 'teacher'), 'teacher'):>13} "
            f"{_stall(worst_stall(rows, 'learner'), 'learner'):>13}"
        )
    return "\n".join(lines)


def describe_speedups(loads: dict[str, bool] | None) -> str:
    if not loads:
        why = "MINILB_PURE is set" if os.environ.get("MINILB_PURE") else "no compiled module was asked for"
        return f"pure Python ({why})"
    parts = [f"{name} {'compiled' if ok else 'pure'}" for name, ok in sorted(loads.items())]
    if os.environ.get("MINILB_PURE"):
        parts.append("MINILB_PURE is set")
    return ", ".join(parts)


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 entries")
    ap.add_argument("--rounds", type=int, default=3, help="learners started per pair (median shown)")
    ap.add_argument("--samples", type=int, default=8, help="keys compared after each resync")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds one resync may take")
    ap.add_argument(
        "--haproxy",
        default=os.environ.get("MINILB_HAPROXY") or shutil.which("haproxy"),
        help="the haproxy binary (default: $MINILB_HAPROXY, else haproxy on the PATH)",
    )
    ap.add_argument("--haproxy-threads", type=int, help="nbthread of the haproxy processes")
    ap.add_argument("--json", help="write every round's results to this file")
    ap.add_argument("--keep-workdir", action="store_true", help="keep the generated configs and the logs")
    args = ap.parse_args(argv)
    entries = 100_000 if args.quick else args.entries
    if not 1 <= entries <= 1 << 24:
        ap.error("--entries must be between 1 and 16777216 (the keys are 10.0.0.0/8)")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    procs.compile_bytecode()  # "from start" includes a learner's start-up: time it as installed
    if not args.haproxy:
        ap.error("no haproxy binary (install haproxy or pass --haproxy)")
    size = max(entries + entries // 4, 1000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-resync-"))
    registry = procs.ProcessRegistry(tmp)
    # SIGTERM (a harness stopping us) unwinds like Ctrl-C: the finally below stops every process
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rng = random.Random(5)
    results: list[dict] = []
    nodes: list[Node] = []
    try:
        m_teach, m_learn = Node("mteach", "minilb", tmp), Node("mlearn", "minilb", tmp)
        h_learn_m = Node("hlearn_m", "haproxy", tmp)
        h_teach, h_learn = Node("hteach", "haproxy", tmp), Node("hlearn", "haproxy", tmp)
        mesh = [m_teach, m_learn, h_learn_m]
        nodes = [*mesh, h_teach, h_learn]
        for node in mesh:
            node.write_config("mpeers", mesh, size, args.haproxy_threads)
        for node in (h_teach, h_learn):
            node.write_config("hpeers", [h_teach, h_learn], size, args.haproxy_threads)

        # the minilb teacher fills itself while haproxy's is filled through its socket
        argv = [sys.executable, str(NODE), "-f", str(m_teach.cfg), "-L", m_teach.name]
        m_teach.start(registry, [*argv, "--fill", str(entries), "--table", TABLE])
        start_haproxy(registry, h_teach, args.haproxy)
        took = fill_haproxy(h_teach, entries)
        print(
            f"haproxy teacher: {entries:,} entries set in {took:.1f} s "
            f"(set table lines pipelined on one prompt session of its stats socket)",
            flush=True,
        )
        ready = start_minilb_wait(m_teach, timeout=max(60.0, entries / 20_000))
        print(
            f"minilb teacher: {entries:,} entries filled in memory in {ready['fill_s']:.1f} s "
            f"(StickTable.get_or_create/set/touch_local before the peers start)",
            flush=True,
        )
        for node, section in ((m_teach, "mpeers"), (h_teach, "hpeers")):
            if not wait_resync_done(node, section, 15.0):
                raise RuntimeError(f"{node.name}: its own start-up resync did not end within 15 s")
        for round_no in range(1, args.rounds + 1):
            keys = sample_keys(entries, args.samples, rng)
            for teacher, learner, section in (
                (m_teach, m_learn, "mpeers"),
                (m_teach, h_learn_m, "mpeers"),
                (h_teach, h_learn, "hpeers"),
            ):
                row = resync(
                    registry,
                    teacher,
                    learner,
                    section,
                    entries=entries,
                    haproxy=args.haproxy,
                    timeout=args.timeout,
                    keys=keys,
                )
                row["round"] = round_no
                results.append(row)
                print(round_line(row), flush=True)
        # after the rounds: the teach encoders are loaded when the first teach begins
        print(f"minilb teacher speed-ups: {describe_speedups(speedups_of(m_teach))}", flush=True)
        learner_loads = next((r["learner_speedups"] for r in results if r.get("learner_speedups")), None)
        print(f"minilb learner speed-ups: {describe_speedups(learner_loads)}", flush=True)
        print(report(results, entries, args.rounds), flush=True)
    finally:
        registry.stop_all()
        if args.keep_workdir:
            print(f"configs and logs (resync_node.py's lag and gc events) kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        if args.json:
            pids = [pid for node in nodes for pid in node.pids]
            Path(args.json).write_text(
                json.dumps({"entries": entries, "results": results, "pids": pids, "tmp": str(tmp)}, indent=1)
            )
    ok = len(results) == 3 * args.rounds and all(
        "seconds" in r and r.get("used") == entries and not r.get("mismatches") for r in results
    )
    return 0 if ok else 1


def start_minilb_wait(node: Node, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in node.events():
            if event.get("event") == "ready":
                return event
        if node.managed.popen.poll() is not None:
            raise procs.StartError(f"{node.name} exited:\n{node.managed.log_tail()}")
        time.sleep(0.05)
    raise procs.StartError(f"{node.name} not ready within {timeout:.0f} s:\n{node.managed.log_tail()}")


def round_line(row: dict) -> str:
    head = f"round {row['round']} {row['pair']:<18}"
    if "seconds" not in row:
        return f"{head} FAILED: {row.get('error')}"
    extra = []
    if row.get("synced_after") is not None:
        extra.append(f"resync finished +{row['synced_after']:.2f} s")
    if row.get("rate_drift"):
        extra.append(f"decaying rates learned - taught: {sorted(row['rate_drift'])}")
    if row.get("mismatches"):
        extra.append(f"MISMATCHES: {'; '.join(row['mismatches'][:3])}")
    if row.get("used") != row["entries"]:
        extra.append(f"WRONG COUNT: {row.get('used')}")
    return (
        f"{head} {row['seconds']:.2f} s from connect ({row['from_start']:.2f} s from start); "
        f"other processes took {_percent(row.get('others'))} of the CPUs; CPU teacher "
        f"{_fmt(row.get('teacher_cpu'), '.2f')} s, learner {_fmt(row.get('learner_cpu'), '.2f')} s; stall ms "
        f"teacher {_stall(row, 'teacher')}, learner {_stall(row, 'learner')}; longest GC pause ms teacher "
        f"{_gc(row.get('teacher_gc_ms'))}, learner {_gc(row.get('learner_gc_ms'))}; {row['sampled']} keys: "
        f"{'equal' if not row['mismatches'] else 'DIFFERENT'} ({row['rates_checked']} rates still exact); "
        f"learner synced: {row['synced']}" + ("; " + "; ".join(extra) if extra else "")
    )


if __name__ == "__main__":
    sys.exit(main())
