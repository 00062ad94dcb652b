"""Owns the conformance harness: one configuration run under real HAProxy 2.6 and
under minilb, the same client steps played against both in lockstep, and the
comparison of what each answered.

A configuration is written once with ``@NAME@`` placeholders for ports; each side
gets its own free port for every distinct name (``@FE@``, ``@STATS@``, ...).
`Pair.start(text)` starts ``haproxy -f CFG -db`` and minilb on their copy and
waits until both answer on their stats socket (readiness is never probed on a
frontend port: a probe connection would be counted by ``tcp-request connection``
rules).

A scenario is a list of steps: `Send` (N requests from a chosen loopback source
address, each on its own connection or all on one keep-alive connection),
`Hold`/`Observe`/`Release` (K idle connections kept open, looked at, closed),
`Wait` (a pause) and `Cli` (a stats socket command; `ShowTable` is
``show table NAME``).
`run_lockstep(pair, steps)` plays step i on both before step i+1: each request of
a `Send` goes to both at the same instant (one thread per side), the other steps
run on HAProxy then on minilb, so that both see the same traffic within a few
milliseconds of each other and rate counters are read at nearly the same instant.  It returns one `Observation` list per side; `assert_same` compares them.

What the comparison masks, and why:
- the entry pointer before ``: key=`` (a memory address in HAProxy);
- ``exp=`` (milliseconds left before expiry) is compared within `EXP_TOLERANCE_MS`,
  because the two processes see a request a few milliseconds apart and are
  asked a few milliseconds apart (a real difference of when an entry is
  refreshed still shows when a request lasts longer than the tolerance).
Nothing else is masked: statuses, the table header line, the order of entries,
``use=`` and every stored value must be equal.

minilb runs through its master/worker entry (``python -m minilb.master``, what
``twistd minilb`` and ``minilb -W`` run), whose worker serves the ``stats socket``
(`minilb.worker.process`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs

from tests.conftest import haproxy_binary

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
REPLY_TIMEOUT = 3.0
EXP_TOLERANCE_MS = 500
CLOSED = "closed"  # a connection closed without any HTTP answer
OPEN = "open"  # a held connection still open
PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


class PortPool:
    """Distinct free ports on 127.0.0.1: every port handed out stays bound (so never
    handed out twice) until `release`, just before the processes start."""

    def __init__(self):
        self._held: list[socket.socket] = []

    def take(self) -> int:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self._held.append(s)
        return s.getsockname()[1]

    def release(self) -> None:
        for s in self._held:
            s.close()
        self._held.clear()


def render(template: str, pool: PortPool) -> tuple[str, dict[str, int]]:
    """The config text with one fresh port per placeholder name, and those ports."""
    ports: dict[str, int] = {}

    def port(m: re.Match) -> str:
        if m.group(1) not in ports:
            ports[m.group(1)] = pool.take()
        return str(ports[m.group(1)])

    return PLACEHOLDER.sub(port, template), ports


# --------------------------------------------------------------------------- processes


class Side:
    """One running load balancer (haproxy or minilb) on its own copy of the config."""

    def __init__(self, name: str, argv: list[str], config_text: str, ports: dict[str, int], workdir: str):
        """``argv`` with ``{cfg}`` where the config file's path goes."""
        self.name = name
        self.config_text, self.ports = config_text, ports
        self.config_path = os.path.join(workdir, f"{name}.cfg")
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.argv = [self.config_path if a == "{cfg}" else a for a in argv]
        self.workdir = workdir
        self.log = open(os.path.join(workdir, f"{name}.log"), "w+b")  # noqa: SIM115 (closed in stop)
        self.proc: subprocess.Popen | None = None
        self.held: dict[str, list[socket.socket | None]] = {}

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
            start_new_session=True,  # its own process group: the workers go with it
        )

    def port(self, name: str) -> int:
        return self.ports[name]

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the stats socket answers ``show table`` (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if cli(self.port("STATS"), "show table", timeout=1.0).startswith("# table"):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        for conns in self.held.values():
            for s in conns:
                if s is not None:
                    s.close()
        self.held.clear()
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=3)
            # a worker left behind by its master still belongs to the group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


@attrs.define
class Pair:
    haproxy: Side
    minilb: Side

    @property
    def sides(self) -> tuple[Side, Side]:
        return (self.haproxy, self.minilb)

    @classmethod
    @contextlib.contextmanager
    def start(cls, template: str) -> Iterator[Pair]:
        """Both processes on ``template``; always stopped when the block ends."""
        binary = haproxy_binary()
        assert binary is not None
        commands = {
            "haproxy": [binary, "-f", "{cfg}", "-db"],
            "minilb": [sys.executable, "-m", "minilb.master", "-f", "{cfg}"],
        }
        with tempfile.TemporaryDirectory(prefix="conformance-") as workdir:
            pool = PortPool()
            sides = [Side(name, argv, *render(template, pool), workdir) for name, argv in commands.items()]
            pool.release()
            try:
                for side in sides:
                    side.start()
                for side in sides:
                    side.wait_ready()
                yield cls(*sides)
            finally:
                for side in sides:
                    side.stop()


# --------------------------------------------------------------------------- client


def cli(port: int, command: str, timeout: float = REPLY_TIMEOUT) -> str:
    """One stats socket command (non-interactive: the server closes after answering)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(command.encode() + b"\n")
        return read_until_close(s).decode(errors="replace")


def read_until_close(s: socket.socket, limit: int = 1 << 20) -> bytes:
    chunks = []
    size = 0
    while size < limit:
        try:
            data = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        chunks.append(data)
        size += len(data)
    return b"".join(chunks)


def connect_from(src: str, port: int) -> socket.socket:
    """A client connection from the loopback address ``src`` (all of 127/8 is local)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(REPLY_TIMEOUT)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def request_bytes(path: str, headers: Sequence[tuple[str, str]], close: bool) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: conformance", *(f"{k}: {v}" for k, v in headers)]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(s: socket.socket, limit: int = 1 << 20) -> bytes:
    """One response (headers, then a ``Content-Length`` body, or up to the close);
    b"" if the connection ended without one."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return data
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    if m is None:
        return data + read_until_close(s, limit)
    want = int(m.group(1))
    while len(body) < want:
        try:
            chunk = s.recv(want - len(body))
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def outcome(reply: bytes, answer: bool) -> int | str | bytes:
    """What a test compares of a reply: `CLOSED`, the whole answer, or its status."""
    if not reply:
        return CLOSED
    if answer:
        return reply
    m = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    return int(m.group(1)) if m else f"unparsable answer {reply[:60]!r}"


def http_exchange(s: socket.socket | None, request: bytes) -> bytes:
    """Send one request on ``s`` and read one response (b"" if closed or reset)."""
    if s is None:
        return b""
    try:
        s.sendall(request)
    except (BrokenPipeError, ConnectionResetError):
        return b""
    return read_response(s)


def http_status(
    src: str, port: int, path: str, headers: Sequence[tuple[str, str]] = (), answer: bool = False
) -> int | str | bytes:
    """One request on a new connection (``Connection: close``): the status code (or
    the whole answer), or `CLOSED` when the connection ended without an answer."""
    try:
        s = connect_from(src, port)
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return CLOSED
    with s:
        reply = http_exchange(s, request_bytes(path, headers, close=True))
        # up to the server's close: by then it has finished the request (released its
        # trackers), and anything it sent after the answer shows in the outcome
        return outcome(reply + read_until_close(s) if reply else reply, answer)


def hold_from(src: str, port: int) -> socket.socket | None:
    """An idle connection from ``src``; None if the server reset it while connecting."""
    try:
        return connect_from(src, port)
    except ConnectionResetError:
        return None


def still_open(s: socket.socket | None) -> str:
    """`OPEN` if the server has not closed ``s`` (nothing to read yet), else `CLOSED`."""
    if s is None:
        return CLOSED
    s.settimeout(0.0)  # with a timeout, Python would wait for data instead of answering EAGAIN
    try:
        data = s.recv(64, socket.MSG_PEEK)
    except BlockingIOError:
        return OPEN
    except OSError:
        return CLOSED
    finally:
        s.settimeout(REPLY_TIMEOUT)
    if not data:
        return CLOSED
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else f"data {data!r}"


# --------------------------------------------------------------------------- steps


@attrs.frozen
class Send:
    """``count`` requests for ``path`` from ``src``, each on its own connection, or
    all on one keep-alive connection (``keepalive``); observed as the status code,
    or the whole answer's bytes with ``answer``."""

    count: int = 1
    src: str = "127.0.0.2"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    port: str = "FE"
    keepalive: bool = False
    answer: bool = False


@attrs.frozen
class Hold:
    """Open ``count`` idle connections from ``src`` and keep them under ``name``;
    observed (after ``settle_ms``) as open or closed by the server."""

    name: str
    count: int
    src: str = "127.0.0.2"
    port: str = "FE"
    settle_ms: int = 300


@attrs.frozen
class Observe:
    """How the connections held under ``name`` are now: open, closed, or the status
    of an answer the server sent on them unasked (a 408, say)."""

    name: str


@attrs.frozen
class Release:
    """Close the connections held under ``name`` (then ``settle_ms`` for the server to see it)."""

    name: str
    settle_ms: int = 300


@attrs.frozen
class Wait:
    ms: int


@attrs.frozen
class Cli:
    """Any stats socket command; its output is compared as ``show table`` output is
    (pointers masked, ``exp=`` within the tolerance, everything else exact).

    It waits ``settle_ms`` first: a client has its answer a little before the
    server has released the request's trackers (haproxy can show ``use=1`` for an
    entry whose last request was answered a millisecond ago)."""

    command: str
    settle_ms: int = 50


def ShowTable(name: str) -> Cli:  # noqa: N802 (reads as the step it is)
    return Cli(f"show table {name}")


@attrs.frozen
class Observation:
    step: int
    what: str
    value: object


Step = Send | Hold | Observe | Release | Wait | Cli


def send_one(step: Send, side: Side, conn: socket.socket | None) -> int | str | bytes:
    """One request of ``step`` to ``side`` (on ``conn`` when keep-alive)."""
    if step.keepalive:
        return outcome(http_exchange(conn, request_bytes(step.path, step.headers, close=False)), step.answer)
    return http_status(step.src, side.port(step.port), step.path, step.headers, step.answer)


def run_lockstep(pair: Pair, steps: Sequence[Step]) -> tuple[list[Observation], list[Observation]]:
    """Play every step on both sides before the next one; one observation list per side.

    Each request of a `Send` goes to haproxy and to minilb at the same instant (one
    thread per side), so that a slow answer (a tarpit, retries) on one side does not
    shift the other side's clock; the other steps run on haproxy, then on minilb."""
    seen: tuple[list[Observation], list[Observation]] = ([], [])
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="conformance") as both:
        for i, step in enumerate(steps):
            if isinstance(step, Send):
                run_send(i, step, pair, seen, both)
            else:
                run_step(i, step, pair, seen)
    return seen


def run_send(i: int, step: Send, pair: Pair, seen, both: ThreadPoolExecutor) -> None:
    conns = [hold_from(step.src, side.port(step.port)) if step.keepalive else None for side in pair.sides]
    try:
        for n in range(step.count):
            what = f"{step.src} GET {step.path} #{n + 1}"
            replies = [
                both.submit(send_one, step, side, conn) for side, conn in zip(pair.sides, conns, strict=True)
            ]
            for out, reply in zip(seen, replies, strict=True):
                out.append(Observation(i, what, reply.result()))
    finally:
        for conn in conns:
            if conn is not None:
                conn.close()


def run_step(i: int, step: Step, pair: Pair, seen) -> None:
    if isinstance(step, Hold):
        for side in pair.sides:
            side.held[step.name] = [hold_from(step.src, side.port(step.port)) for _ in range(step.count)]
        time.sleep(step.settle_ms / 1000)
        for side, out in zip(pair.sides, seen, strict=True):
            states = tuple(still_open(s) for s in side.held[step.name])
            out.append(Observation(i, f"hold {step.name}: {step.count} from {step.src}", states))
    elif isinstance(step, Observe):
        for side, out in zip(pair.sides, seen, strict=True):
            states = tuple(still_open(s) for s in side.held[step.name])
            out.append(Observation(i, f"observe {step.name}", states))
    elif isinstance(step, Release):
        for side in pair.sides:
            for s in side.held.pop(step.name, []):
                if s is not None:
                    s.close()
        time.sleep(step.settle_ms / 1000)
    elif isinstance(step, Wait):
        time.sleep(step.ms / 1000)
    elif isinstance(step, Cli):
        time.sleep(step.settle_ms / 1000)
        for side, out in zip(pair.sides, seen, strict=True):
            out.append(Observation(i, f"cli {step.command}", cli(side.port("STATS"), step.command)))
    else:  # pragma: no cover
        raise TypeError(step)


# --------------------------------------------------------------------------- comparison

ENTRY = re.compile(r"^0x[0-9a-f]+: (key=.*)$")
EXP = re.compile(r" exp=(\d+)")


@attrs.frozen
class TableDump:
    """``show table NAME`` output with the pointers masked; ``exps`` kept apart."""

    header: tuple[str, ...]
    entries: tuple[str, ...]  # "key=... use=N exp=* gpc0=..."
    exps: tuple[int, ...]


def parse_show_table(text: str) -> TableDump:
    header, entries, exps = [], [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = ENTRY.match(line)
        if m is None:
            header.append(line)
            continue
        body = m.group(1)
        e = EXP.search(body)
        exps.append(int(e.group(1)) if e else -1)
        entries.append(EXP.sub(" exp=*", body))
    return TableDump(tuple(header), tuple(entries), tuple(exps))


def differences(haproxy: Sequence[Observation], minilb: Sequence[Observation]) -> list[str]:
    """Human-readable differences between the two transcripts (empty: conformant)."""
    found = []
    if len(haproxy) != len(minilb):
        found.append(f"{len(haproxy)} observations from haproxy, {len(minilb)} from minilb")
    for h, m in zip(haproxy, minilb, strict=False):
        if h.what.startswith("cli "):
            hd, md = parse_show_table(str(h.value)), parse_show_table(str(m.value))
            if (hd.header, hd.entries) != (md.header, md.entries):
                found.append(f"step {h.step} {h.what}:\n  haproxy: {h.value!r}\n  minilb:  {m.value!r}")
            else:
                for he, me, entry in zip(hd.exps, md.exps, hd.entries, strict=True):
                    if abs(he - me) > EXP_TOLERANCE_MS:
                        found.append(
                            f"step {h.step} {h.what}: {entry.split()[0]} exp={he} (haproxy) exp={me} (minilb)"
                        )
        elif h.value != m.value:
            found.append(f"step {h.step} {h.what}: haproxy {h.value!r}, minilb {m.value!r}")
    return found


def assert_same(pair: Pair, steps: Sequence[Step]) -> tuple[list[Observation], list[Observation]]:
    """Run ``steps`` in lockstep and fail with every difference listed."""
    haproxy, minilb = run_lockstep(pair, steps)
    if os.environ.get("CONFORMANCE_TRANSCRIPT"):  # pytest -s: both transcripts side by side
        for h, m in zip(haproxy, minilb, strict=False):
            print(f"[{h.step}] {h.what}\n  haproxy: {h.value!r}\n  minilb:  {m.value!r}")
    diffs = differences(haproxy, minilb)
    assert not diffs, "minilb differs from haproxy:\n" + "\n".join(diffs)
    return haproxy, minilb
