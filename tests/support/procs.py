"""Processes for integration tests: origin servers, ``twistd -n minilb`` and ``minilb``.

Every process is started through a `ProcessGroup`, which kills whatever is still
running when the test ends (the ``procs`` fixture in the integration tests), and
every wait is bounded.  Children run the working tree's minilb (``PYTHONPATH`` is
the repository root); twistd finds the plugin installed by ``pip install .``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = START_TIMEOUT, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with status {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def process_table() -> list[tuple[int, str, int, int]]:
    """Every process as (pid, state, parent pid, process group), read from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out.append((int(entry), fields[0], int(fields[1]), int(fields[2])))
    return out


def rss_kb(pid: int) -> int:
    """Resident memory of a process (VmRSS from /proc), in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Proc:
    """A started child with its output collected in the background (bounded)."""

    MAX_OUTPUT = 4 << 20

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None = None, pass_fds=()):
        self.argv = argv
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            pass_fds=pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self._lines: list[str] = []
        self._size = 0
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                if self._size < self.MAX_OUTPUT:
                    self._lines.append(line)
                    self._size += len(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self._lines)

    def wait_for_line(self, needle: str, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines:
                    if needle in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not self._reader.is_alive()):
                    raise TimeoutError(
                        f"{needle!r} not seen in output of {self.argv}:\n" + "\n".join(self._lines)
                    )
                self._cond.wait(min(left, 0.2))

    def poll(self):
        return self.popen.poll()

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.pid, signum)

    def wait(self, timeout: float = 10.0) -> int:
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=2)
        return code

    def stop(self) -> None:
        """Terminate the process group, escalating to SIGKILL after 5 s."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=5)
        self._reader.join(timeout=2)


class Origin(Proc):
    def __init__(self, name: str, env: dict[str, str], tls_crt: str | None = None, port: int = 0):
        argv = [sys.executable, "-m", "tests.support.origin", "--name", name, "--port", str(port)]
        if tls_crt:
            argv += ["--tls-crt", tls_crt]
        super().__init__(argv, env, cwd=str(REPO))
        line = self.wait_for_line("PORT ")
        self.name = name
        self.port = int(line.split()[1])


class ProcessGroup:
    """Starts processes for one test and cleans all of them up."""

    def __init__(self):
        self.procs: list[Proc] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="minilb-it-"))
        self.env = child_env()

    def origin(self, name: str, tls_crt: str | None = None, port: int = 0) -> Origin:
        o = Origin(name, self.env, tls_crt, port)
        self.procs.append(o)
        return o

    def write_config(self, text: str, name: str = "minilb.cfg") -> str:
        path = self.tmp / name
        path.write_text(text)
        return str(path)

    def twistd(self, config_path: str, *extra: str, wait_port: int | None = None) -> Proc:
        twistd = shutil.which("twistd") or "twistd"
        p = Proc(
            [twistd, "--pidfile=", "-n", "minilb", "-c", config_path, *extra], self.env, cwd=str(self.tmp)
        )
        self.procs.append(p)
        if wait_port is not None:
            wait_for_port(wait_port, proc=p.popen)
        return p

    def minilb(self, *argv: str, wait_port: int | None = None, pass_fds=()) -> Proc:
        p = Proc([sys.executable, "-m", "minilb", *argv], self.env, cwd=str(self.tmp), pass_fds=pass_fds)
        self.procs.append(p)
        if wait_port is not None:
            wait_for_port(wait_port, proc=p.popen)
        return p

    def run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env, cwd=str(self.tmp), capture_output=True, timeout=timeout)

    def cleanup(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(name="procs")
def procs_fixture():
    """The ``procs`` fixture: a `ProcessGroup` whose processes are all stopped after the test."""
    group = ProcessGroup()
    try:
        yield group
    finally:
        group.cleanup()


def has_ipv6() -> bool:
    """True when this machine can bind the IPv6 loopback."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False
