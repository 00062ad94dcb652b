"""Helpers for the master/reload tests: a fake process reactor and fake sockets for
unit tests, and real-process helpers (a master started in its own process group,
CLI calls, HTTP load) for the integration tests."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from twisted.internet import error
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from tests.support.procs import REPO, child_env, process_table

# --------------------------------------------------------------------------- fakes


class FakeSocket:
    _numbers = itertools.count(100)

    def __init__(self, key: str):
        self.key = key
        self.fd = next(self._numbers)
        self.closed = False
        self.family = socket.AF_INET

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        self.closed = True


class FakeBinder:
    """Records every socket the master binds; ``fail`` holds keys that cannot be bound."""

    def __init__(self):
        self.sockets: list[FakeSocket] = []
        self.fail: set[str] = set()

    def __call__(self, spec) -> FakeSocket:
        if spec.key in self.fail:
            raise OSError(f"cannot bind socket (Address already in use) for [{spec.key}]")
        sock = FakeSocket(spec.key)
        self.sockets.append(sock)
        return sock

    def bound(self, key_part: str) -> list[FakeSocket]:
        return [s for s in self.sockets if key_part in s.key]


class FakeProcess:
    _pids = itertools.count(5000)

    def __init__(self, proto, executable, args, env, childFDs):
        self.proto = proto
        self.executable = executable
        self.args = args
        self.env = env
        self.childFDs = childFDs
        self.pid = next(self._pids)
        self.written: list[bytes] = []
        self.signals: list[str] = []
        self.ended = False

    def writeToChild(self, fd: int, data: bytes) -> None:
        assert fd == 0
        self.written.append(data)

    def signalProcess(self, name: str) -> None:
        if self.ended:
            raise error.ProcessExitedAlready()
        self.signals.append(name)

    # what the worker would do
    def say(self, data: bytes) -> None:
        self.proto.childDataReceived(1, data)

    def end(self, code: int = 0) -> None:
        self.ended = True
        reason = error.ProcessDone(None) if code == 0 else error.ProcessTerminated(exitCode=code)
        self.proto.processEnded(Failure(reason))

    @property
    def fd_map(self) -> dict[str, int]:
        import json

        return json.loads(self.args[self.args.index("--fds") + 1])

    def master_fd(self, key_part: str) -> int:
        (key,) = [k for k in self.fd_map if key_part in k]
        return self.childFDs[self.fd_map[key]]


class FakeProcessReactor(MemoryReactorClock):
    def __init__(self):
        super().__init__()
        self.processes: list[FakeProcess] = []

    def spawnProcess(
        self, proto, executable, args=(), env=None, path=None, uid=None, gid=None, usePTY=0, childFDs=None
    ):
        process = FakeProcess(proto, executable, list(args), env, childFDs)
        self.processes.append(process)
        proto.makeConnection(process)
        return process


# --------------------------------------------------------------------------- configs


def config_text(
    port: int,
    *,
    extra_port: int | None = None,
    peer_port: int | None = None,
    stats: str | None = None,
    hard_stop_after: str | None = None,
    table: str = "type ip size 1m expire 60s store http_req_rate(10s),gpc0,http_req_cnt",
) -> str:
    lines = ["global"]
    if stats:
        lines.append(f"    stats socket {stats} level admin")
    if hard_stop_after:
        lines.append(f"    hard-stop-after {hard_stop_after}")
    lines += [
        "defaults",
        "    mode http",
        "    timeout client 5s",
        "    timeout server 5s",
        "    timeout connect 1s",
    ]
    if peer_port is not None:
        lines += ["peers mypeers", f"    peer me 127.0.0.1:{peer_port}", f"    table t {table}"]
    lines += ["frontend fe", f"    bind 127.0.0.1:{port}"]
    if peer_port is not None:
        lines.append("    http-request track-sc0 src table mypeers/t")
    lines.append("    http-request return status 200 content-type text/plain string ok")
    if extra_port is not None:
        lines += [
            "frontend added",
            f"    bind 127.0.0.1:{extra_port}",
            "    http-request return status 200 content-type text/plain string added",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- real processes


class Master:
    """``python -m minilb.master`` in its own process group; `stop()` kills the group."""

    def __init__(self, tmp: Path, cfg: Path, *extra: str):
        self.tmp = tmp
        self.cli = str(tmp / "master.sock")
        self.log_path = tmp / "master.log"
        self.log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "minilb.master", "-f", str(cfg), "-L", "me", "-S", self.cli, *extra],
            env=child_env(),
            cwd=str(REPO),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, needle: str, count: int = 1, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.output.count(needle) >= count:
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise TimeoutError(f"{needle!r} x{count} not seen in master output:\n{self.output}")

    def command(self, line: str, timeout: float = 20.0) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(self.cli)
            s.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(1 << 16)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode()

    def workers(self) -> list[int]:
        """Pids of the workers ``show proc`` lists (current and old)."""
        out = []
        for line in self.command("show proc").splitlines():
            words = line.split()
            if len(words) >= 2 and words[1] == "worker":
                out.append(int(words[0]))
        return out

    def reload(self) -> None:
        os.kill(self.pid, signal.SIGUSR2)

    def reload_and_settle(self, n: int, timeout: float = 30.0) -> None:
        """Reload, then wait until worker generation ``n`` alone remains."""
        self.reload()
        self.wait_for(f"worker #{n} (pid", timeout=timeout)
        self.wait_for_single_worker(timeout)

    def wait_for_single_worker(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.workers()) == 1:
                return
            time.sleep(0.05)
        raise TimeoutError(f"old workers still there:\n{self.command('show proc')}\n{self.output}")

    def stop(self) -> None:
        try:
            if self.popen.poll() is None:
                os.killpg(self.pid, signal.SIGTERM)
                try:
                    self.popen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=5)
        self.log.close()


def group_pids(pgid: int) -> list[int]:
    """Processes still alive in process group ``pgid`` (from /proc)."""
    return [pid for pid, state, _, group in process_table() if state != "Z" and group == pgid]


class IdleClosed(ConnectionError):
    """A reused keep-alive connection closed by the server before any byte of the
    answer: the race every HTTP client retries on a fresh connection (RFC 9112
    9.3.1); the server closing idle connections on soft stop is allowed to cause it."""


def http_get(conn: socket.socket | None, port: int) -> tuple[bytes, socket.socket | None]:
    """One GET on a keep-alive connection (a new one when ``conn`` is None or was
    closed by the server after its previous answer); returns (status line, the
    connection to reuse or None)."""
    reused = conn is not None
    if conn is None:
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    data = b""
    try:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed before an answer ({data!r})")
            data += chunk
    except OSError as exc:
        conn.close()
        if reused and not data:
            raise IdleClosed(str(exc)) from exc
        raise
    head, _, body = data.partition(b"\r\n\r\n")
    lower = head.lower()
    length = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed inside a body")
        body += chunk
    if b"connection: close" in lower:
        conn.close()
        conn = None
    return head.split(b"\r\n", 1)[0], conn


class LoadLoop:
    """Client threads sending GETs in a loop: one keeps its connection alive (a
    fresh one only when the server says ``Connection: close``), one opens a new
    connection per request.  Every failure is recorded."""

    def __init__(self, port: int):
        self.port = port
        self.ok = 0
        self.retried = 0  # requests retried after `IdleClosed`
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(True,), daemon=True),
            threading.Thread(target=self._run, args=(False,), daemon=True),
        ]

    def _run(self, keep_alive: bool) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                try:
                    status, conn = http_get(conn, self.port)
                except IdleClosed:
                    self.retried += 1
                    status, conn = http_get(None, self.port)
                if not keep_alive and conn is not None:
                    conn.close()
                    conn = None
                if status.startswith(b"HTTP/1.1 200"):
                    self.ok += 1
                else:
                    self.failures.append(status.decode())
            except OSError as exc:
                self.failures.append(f"{'keep-alive' if keep_alive else 'new'}: {exc!r}")
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.002)
        if conn is not None:
            conn.close()

    def __enter__(self) -> LoadLoop:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
