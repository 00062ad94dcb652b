"""Process plumbing for the harness: start commands pinned to a core in their own process group, wait for
their port, read the CPU time of a whole process tree from /proc, probe them with a tiny HTTP client, and
stop every one of them (and their children) whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PROBE_MAX_BYTES = 4 * 1024 * 1024  # a probe reads at most this much of one response


class StartError(RuntimeError):
    """A system under test did not come up: its command is missing, it exited, or never listened."""


@attrs.frozen
class ProcStat:
    """The fields of /proc/PID/stat the harness needs (times in clock ticks)."""

    pid: int
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int

    @property
    def own_ticks(self) -> int:
        return self.utime + self.stime

    @property
    def reaped_children_ticks(self) -> int:
        return self.cutime + self.cstime


def parse_proc_stat(text: str) -> ProcStat:
    """Parse one /proc/PID/stat line; the command name may hold spaces and parentheses."""
    open_paren = text.index("(")
    close_paren = text.rindex(")")
    pid = int(text[:open_paren].strip())
    rest = text[close_paren + 1 :].split()
    # rest[0] is field 3 (state); utime is field 14, stime 15, cutime 16, cstime 17.
    return ProcStat(
        pid=pid,
        ppid=int(rest[1]),
        utime=int(rest[11]),
        stime=int(rest[12]),
        cutime=int(rest[13]),
        cstime=int(rest[14]),
    )


def descendants(root: int, parents: dict[int, int]) -> list[int]:
    """root and every process below it, given a pid -> ppid map."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found = [root]
    index = 0
    while index < len(found):
        found.extend(children.get(found[index], ()))
        index += 1
    return found


def tree_cpu_ticks(stats: Iterable[ProcStat], root: int) -> int:
    """CPU ticks of root and its live descendants, plus what their already reaped children used."""
    by_pid = {stat.pid: stat for stat in stats}
    if root not in by_pid:
        return 0
    tree = descendants(root, {pid: stat.ppid for pid, stat in by_pid.items()})
    return sum(by_pid[pid].own_ticks + by_pid[pid].reaped_children_ticks for pid in tree)


def read_all_proc_stats() -> list[ProcStat]:
    stats = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stats.append(parse_proc_stat(handle.read()))
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return stats


def process_tree_cpu_seconds(root: int) -> float:
    return tree_cpu_ticks(read_all_proc_stats(), root) / CLOCK_TICKS_PER_S


@attrs.frozen
class CpuTimes:
    """One CPU's line of /proc/stat, in clock ticks."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int

    @property
    def total(self) -> int:
        return (
            self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
        )

    @property
    def running_tasks(self) -> int:
        """Time spent running processes, or taken away by the hypervisor (steal)."""
        return self.user + self.nice + self.system + self.steal


def parse_cpu_times(proc_stat: str, cpu: int) -> CpuTimes:
    label = f"cpu{cpu}"
    for line in proc_stat.splitlines():
        fields = line.split()
        if fields and fields[0] == label:
            numbers = [int(field) for field in fields[1:9]] + [0] * max(0, 9 - len(fields))
            return CpuTimes(*numbers)
    raise ValueError(f"/proc/stat has no line for {label}")


def read_cpu_times(cpu: int) -> CpuTimes:
    with open("/proc/stat") as handle:
        return parse_cpu_times(handle.read(), cpu)


def share_taken_by_others(before: CpuTimes, after: CpuTimes, own_ticks: float) -> float | None:
    """The share of one CPU that processes other than ours (`own_ticks` of them) used between two
    readings, hypervisor steal included; None when no time passed."""
    elapsed = after.total - before.total
    if elapsed <= 0:
        return None
    others = after.running_tasks - before.running_tasks - own_ticks
    return min(1.0, max(0.0, others / elapsed))


def process_tree(root: int) -> list[int]:
    return descendants(root, {stat.pid: stat.ppid for stat in read_all_proc_stats()})


@attrs.define
class Managed:
    """A process the harness started; `pid` is also its process group id."""

    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, max_lines: int = 15) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-max_lines:])


class ProcessRegistry:
    """Every process the harness starts goes through here, so that `stop_all` can end them all."""

    def __init__(self, log_dir: Path, niceness: int = 0) -> None:
        self._log_dir = log_dir
        self._niceness = niceness  # applied to the pinned processes (systems, wrk, origin), 0: unchanged
        self._running: list[Managed] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpu: int | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Managed:
        full_argv = list(argv)
        if cpu is not None:
            full_argv = ["taskset", "-c", str(cpu), *full_argv]
            if self._niceness:
                full_argv = ["nice", "-n", str(self._niceness), *full_argv]
        log_path = self._log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            try:
                popen = subprocess.Popen(
                    full_argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,
                )
            except OSError as error:
                raise StartError(f"{name}: cannot run {full_argv[0]!r}: {error}") from error
        if cpu is not None and self._niceness:
            _set_autogroup_nice(popen.pid, self._niceness)
        managed = Managed(name=name, argv=full_argv, popen=popen, log_path=log_path)
        self._running.append(managed)
        return managed

    def stop(self, managed: Managed, grace_s: float = 5.0) -> None:
        """SIGTERM the process group and every descendant, then SIGKILL whatever is left."""
        if managed in self._running:
            self._running.remove(managed)
        tree = process_tree(managed.pid) if managed.popen.poll() is None else []
        _signal_group_and_tree(managed.pid, tree, signal.SIGTERM)
        try:
            managed.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(pid) for pid in tree[1:]):
            time.sleep(0.05)
        _signal_group_and_tree(managed.pid, [pid for pid in tree if _alive(pid)], signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            managed.popen.wait(timeout=grace_s)

    def stop_all(self) -> None:
        for managed in reversed(list(self._running)):
            self.stop(managed)


def _set_autogroup_nice(pid: int, niceness: int) -> None:
    """With the kernel's session autogroups (sched_autogroup_enabled), a process's nice value counts
    only inside its session; a new session competes with the others by its autogroup's nice."""
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/autogroup", "w") as handle:
            handle.write(str(niceness))


def _alive(pid: int) -> bool:
    """Whether pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return False
    return text[text.rindex(")") + 2 :].split(" ", 1)[0] != "Z"


def _signal_group_and_tree(group: int, tree: Sequence[int], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def wait_for_port(port: int, managed: Managed, timeout_s: float) -> None:
    """Return once 127.0.0.1:port accepts a connection; StartError if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if managed.popen.poll() is not None:
            raise StartError(
                f"{managed.name} exited with status {managed.popen.returncode} before listening on "
                f"port {port}; last output:\n{managed.log_tail()}"
            )
        with socket.socket() as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(("127.0.0.1", port))
                return
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise StartError(
                f"{managed.name} did not listen on port {port} within {timeout_s:.0f} s; "
                f"last output:\n{managed.log_tail()}"
            )
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compile_bytecode(root: Path | None = None) -> None:
    """Write the bytecode of the checkout's ``minilb`` (``__pycache__``, gitignored), as
    ``pip install`` does for an installed minilb: a worker started from a checkout where
    ``PYTHONDONTWRITEBYTECODE`` is set would otherwise compile every module from source
    at each start (about 0.4 s of a reload's start-up on this machine)."""
    import compileall  # noqa: PLC0415 - only the start-up benchmarks need it

    root = root or Path(__file__).resolve().parent.parent.parent
    compileall.compile_dir(str(root / "minilb"), quiet=1)
