"""Owns the master process at run time: checking the configuration, holding every
listening socket, spawning worker processes on them, reloading, and the master CLI.

`MasterService` is a Twisted service that carries out what the pure
`minilb.master.generations.Generations` decides:

- ``startService`` checks the configuration (`check_config`), binds every listener
  (`minilb.master.sockets.Listeners`) and spawns generation 1;
- `reload()` (SIGUSR2, SIGHUP, the master CLI's ``reload``) checks the
  configuration again: when it is invalid every problem is logged and nothing
  changes; else the listeners of the new configuration are bound (an unchanged
  listener key keeps its socket), a new worker is spawned on them and, once it
  writes ``ready``, the older workers get ``soft-stop``;
- a worker is ``python -m minilb.worker`` started with ``spawnProcess``; its control
  channel is its stdin (master -> worker) and stdout (worker -> master), one short
  line per message (`minilb.master.control`); its stderr is the master's; the
  listening sockets are inherited as fds 3, 4, ... and named by ``--fds`` (listener
  key -> fd); two more are the master's stdout (which the worker makes its fd 1
  once the control channel is moved away) and a private CLI socket the master
  forwards ``@1``/``@!PID`` commands to;
- sockets no live worker needs any more are closed when the last worker using them
  exits; ``hard-stop-after`` bounds a soft-stopped worker's drain;
- `stopService` (SIGTERM, SIGINT) stops every worker at once and fires when they are
  gone; the current worker dying unexpectedly makes the master exit with an error.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.application import service
from twisted.internet import defer, error, protocol
from twisted.protocols.basic import LineOnlyReceiver

import minilb
from minilb import reloadtrace
from minilb.config.model import Address
from minilb.master import generations as g
from minilb.master.control import (
    HARD_STOP,
    READY,
    SOFT_STOP,
    ControlLineTooLong,
    LineBuffer,
    ListenerSpec,
    ProcRow,
    control_line,
    encode_fd_map,
    listener_specs,
    show_proc,
)
from minilb.master.sockets import Listeners, bind_listener
from minilb.timebase import now_ms

#: the key of the private CLI socket in a worker's fd map
WORKER_CLI_KEY = "worker-cli"
#: the key of the master's stdout in a worker's fd map (fd 1 is the control channel)
STDOUT_KEY = "stdout"
#: first fd number a worker inherits listeners on
FIRST_CHILD_FD = 3
#: after a hard stop's SIGTERM, SIGKILL follows this late if the worker is still there
KILL_AFTER_S = 3.0
MAX_CLI_LINE = 16384
VERSION = "2.6.12-minilb"


class StartupError(Exception):
    """The master could not start (invalid configuration, a socket that cannot be bound)."""


def _stderr_log(level: str, message: str) -> None:
    tag = f"[{level.upper()}]"
    print(f"{tag:<11}({os.getpid()}) : {message}", file=sys.stderr, flush=True)


class _Plan:
    """What a Spawn carries: the checked configuration and its listeners."""

    def __init__(self, config: Any, specs: dict[str, ListenerSpec]):
        self.config = config
        self.specs = specs


class WorkerProcessProtocol(protocol.ProcessProtocol):
    """The master's end of one worker: control lines in, process end out."""

    def __init__(self, master: MasterService, gen: int):
        self.master = master
        self.gen = gen
        self.lines = LineBuffer()
        self.ended = False

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD != 1:
            return
        try:
            lines = self.lines.feed(data)
        except ControlLineTooLong as exc:
            self.master.log("alert", f"worker #{self.gen}: {exc}; stopping it")
            self.master._hard_stop(self.gen)
            return
        for line in lines:
            self.master._control_line(self.gen, line)

    def processEnded(self, reason) -> None:
        self.ended = True
        value = reason.value
        code = getattr(value, "exitCode", None)
        if code is None and getattr(value, "signal", None) is not None:
            code = 128 + value.signal
        self.master._worker_ended(self.gen, code)


class MasterService(service.Service):
    """See the module docstring.  ``master_socket`` is the ``-S`` argument (a UNIX
    path, or ``ipv4@HOST:PORT`` / ``HOST:PORT``), optionally followed by
    ``,``-separated options that are ignored."""

    name = "minilb-master"

    def __init__(
        self,
        paths: Sequence[str],
        *,
        localpeer: str | None = None,
        environ: Mapping[str, str] | None = None,
        hostname: str | None = None,
        reactor: Any,
        pidfile: str | None = None,
        master_socket: str | None = None,
        log: Callable[[str, str], None] | None = None,
        binder: Callable[[ListenerSpec], Any] = bind_listener,
        python: str = sys.executable,
        on_exit: Callable[[int], None] | None = None,
    ):
        self.paths = list(paths)
        self.localpeer = localpeer
        self.environ = dict(os.environ if environ is None else environ)
        self.hostname = hostname
        self.reactor = reactor
        self.pidfile = pidfile
        self.master_socket = master_socket
        self.log = log or _stderr_log
        self._binder = binder
        self.python = python
        self.on_exit = on_exit
        self.generations = g.Generations(reactor)
        self.listeners = Listeners(binder)
        self.processes: dict[int, Any] = {}  # gen -> process transport
        self.protocols: dict[int, WorkerProcessProtocol] = {}
        self.worker_keys: dict[int, set[str]] = {}
        self.worker_cli: dict[int, str] = {}  # gen -> abstract socket name
        self.started_at: dict[int, float] = {}
        self.reloads = 0
        self.failed_reloads = 0
        self.reloads_at_spawn: dict[int, int] = {}
        self.exit_code: int | None = None
        self.finished: defer.Deferred = defer.Deferred()  # fires with the exit code
        self.cli_port: Any = None
        self._cli_path: str | None = None
        self.config: Any = None
        self._timer: Any = None
        self._kill_timers: dict[int, Any] = {}
        self._start_time = time.time()
        self._token = secrets.token_hex(4)

    # ------------------------------------------------------------------ config
    def _check(self) -> tuple[Any, list[str]]:
        """(checked config or None, alert lines); warnings are logged."""
        from minilb.check import check_config
        from minilb.config.render import render_diagnostic
        from minilb.errors import ALERT

        result = check_config(
            self.paths, localpeer=self.localpeer, environ=self.environ, hostname=self.hostname
        )
        problems = []
        for diag in result.diagnostics:
            if diag.severity == ALERT:
                problems.append(render_diagnostic(diag))
            else:
                self.log("warning", render_diagnostic(diag))
        return (result.config if result.ok else None), problems

    def _bind(self, config: Any) -> _Plan:
        specs = listener_specs(config)
        self.listeners.prepare(specs.values())
        return _Plan(config, specs)

    # ------------------------------------------------------------------ lifecycle
    def startService(self) -> None:
        config, problems = self._check()
        if config is None:
            for p in problems:
                self.log("alert", p)
            raise StartupError("invalid configuration")
        try:
            plan = self._bind(config)
        except OSError as exc:
            self.log("alert", f"Starting: {exc}")
            raise StartupError(str(exc)) from exc
        self.config = config
        self.generations.hard_stop_after_ms = config.global_.hard_stop_after
        if self.pidfile is None:
            self.pidfile = config.global_.pidfile
        if self.pidfile:
            with open(self.pidfile, "w") as f:
                f.write(f"{os.getpid()}\n")
        if self.master_socket:
            self.cli_port = self._listen_cli(self.master_socket)
        super().startService()
        self._apply(self.generations.start(plan))

    def stopService(self) -> defer.Deferred | None:
        super().stopService()
        if self.exit_code is not None:
            return None
        self._apply(self.generations.stop(fast=True))
        return self._wait_exit()

    def _wait_exit(self) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.finished.addBoth(lambda r: (d.callback(r), r)[1])
        return d

    def reload(self) -> None:
        """Re-read the configuration and start a new generation on it (if valid)."""
        if self.exit_code is not None:
            return
        reloadtrace.mark("master: reload")
        config, problems = self._check()
        reloadtrace.mark("master: configuration checked")
        if config is None:
            self.failed_reloads += 1
            self._apply(self.generations.reload(None, problems))
            return
        try:
            plan = self._bind(config)
        except OSError as exc:
            self.failed_reloads += 1
            self._apply(self.generations.reload(None, [f"cannot bind a listener: {exc}"]))
            return
        self.config = config
        self.reloads += 1
        self.generations.hard_stop_after_ms = config.global_.hard_stop_after
        self._apply(self.generations.reload(plan))
        self._release_unused()

    # ------------------------------------------------------------------ actions
    def _apply(self, actions: Sequence[g.Action]) -> None:
        for action in actions:
            if isinstance(action, g.Log):
                self.log(action.level, action.message)
            elif isinstance(action, g.Spawn):
                self._spawn(action.gen, action.config)
            elif isinstance(action, g.SoftStop):
                self._send(action.gen, SOFT_STOP)
                reloadtrace.mark(f"master: worker #{action.gen} told to soft-stop")
            elif isinstance(action, g.HardStop):
                self._hard_stop(action.gen)
            elif isinstance(action, g.Exit):
                self._exit(action.code)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        deadline = self.generations.next_deadline()
        if deadline is not None and self.exit_code is None:
            delay = max(deadline - now_ms(self.reactor), 0) / 1000.0
            self._timer = self.reactor.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._apply(self.generations.tick())

    def _worker_argv(self, gen: int, fds: dict[str, int], old_worker: bool) -> list[str]:
        argv = [self.python, "-m", "minilb.worker", "--gen", str(gen)]
        for path in self.paths:
            argv += ["-f", path]
        if self.localpeer:
            argv += ["-L", self.localpeer]
        if self.hostname:
            argv += ["--hostname", self.hostname]
        if old_worker:
            argv.append("--old-worker")
        argv += ["--fds", encode_fd_map(fds)]
        return argv

    def _worker_env(self) -> dict[str, str]:
        env = dict(self.environ)
        root = os.path.dirname(os.path.dirname(os.path.abspath(minilb.__file__)))
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = root + (os.pathsep + path if path else "")
        return env

    def _spawn(self, gen: int, plan: _Plan) -> None:
        child_fds: dict[int, Any] = {0: "w", 1: "r", 2: 2}
        fds: dict[str, int] = {}
        number = FIRST_CHILD_FD
        for key in plan.specs:
            child_fds[number] = self.listeners.fileno(key)
            fds[key] = number
            number += 1
        child_fds[number] = 1  # the master's stdout: the worker's fd 1 (``log stdout``)
        fds[STDOUT_KEY] = number
        number += 1
        cli_name = f"minilb-master-{os.getpid()}-{self._token}-{gen}"
        cli_sock = None
        try:
            cli_sock = self._binder(ListenerSpec(WORKER_CLI_KEY, Address("abns", path=cli_name)))
            child_fds[number] = cli_sock.fileno()
            fds[WORKER_CLI_KEY] = number
        except OSError as exc:
            self.log("warning", f"worker #{gen}: no private CLI socket ({exc})")
        old_worker = any(w.gen < gen for w in self.generations.alive())
        proto = WorkerProcessProtocol(self, gen)
        self.worker_keys[gen] = set(plan.specs)
        try:
            transport = self.reactor.spawnProcess(
                proto,
                self.python,
                self._worker_argv(gen, fds, old_worker),
                env=self._worker_env(),
                childFDs=child_fds,
            )
        except Exception as exc:
            self.log("alert", f"cannot start worker #{gen}: {exc}")
            self.reactor.callLater(0, self._worker_ended, gen, None)
            return
        finally:
            if cli_sock is not None:
                cli_sock.close()  # the worker holds its own copy
        if cli_sock is not None:
            self.worker_cli[gen] = cli_name
        self.processes[gen] = transport
        self.protocols[gen] = proto
        self.started_at[gen] = self.reactor.seconds()
        self.reloads_at_spawn[gen] = self.reloads
        self.generations.worker_started(gen, transport.pid)
        reloadtrace.mark(f"master: worker #{gen} spawned (pid {transport.pid})")

    def _send(self, gen: int, text: str) -> None:
        transport = self.processes.get(gen)
        if transport is None:
            return
        try:
            transport.writeToChild(0, control_line(text))
        except Exception:  # the pipe is gone: the process end will tell
            pass

    def _hard_stop(self, gen: int) -> None:
        transport = self.processes.get(gen)
        if transport is None:
            return
        self._send(gen, HARD_STOP)
        self._signal(gen, "TERM")
        if gen not in self._kill_timers:
            self._kill_timers[gen] = self.reactor.callLater(KILL_AFTER_S, self._signal, gen, "KILL")

    def _signal(self, gen: int, name: str) -> None:
        transport = self.processes.get(gen)
        if transport is None:
            return
        try:
            transport.signalProcess(name)
        except (error.ProcessExitedAlready, OSError):
            pass

    # ------------------------------------------------------------------ events
    def _control_line(self, gen: int, line: str) -> None:
        if line == READY:
            reloadtrace.mark(f"master: worker #{gen} ready")
            self._apply(self.generations.worker_ready(gen))
        elif line.startswith("log "):
            level, _, message = line[4:].partition(" ")
            self.log(level, f"worker #{gen}: {message}")
        elif line:
            self.log("warning", f"worker #{gen}: unknown control line {line[:80]!r}")

    def _worker_ended(self, gen: int, code: int | None) -> None:
        self.processes.pop(gen, None)
        self.protocols.pop(gen, None)
        self.worker_cli.pop(gen, None)
        self.started_at.pop(gen, None)
        self.reloads_at_spawn.pop(gen, None)
        timer = self._kill_timers.pop(gen, None)
        if timer is not None and timer.active():
            timer.cancel()
        self._apply(self.generations.worker_exited(gen, code))
        self.worker_keys.pop(gen, None)
        self._release_unused()

    def _release_unused(self) -> None:
        keep: set[str] = set()
        for w in self.generations.alive():
            keep |= self.worker_keys.get(w.gen, set())
        if self.exit_code is None and self.config is not None:
            keep |= set(listener_specs(self.config))
        for key in self.listeners.release(keep):
            self.log("notice", f"closed listener {key} (no worker uses it any more)")

    def _exit(self, code: int) -> None:
        if self.exit_code is not None:
            return
        self.exit_code = code
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.listeners.close_all()
        if self.cli_port is not None:
            self.cli_port.stopListening()
            self.cli_port = None
            if self._cli_path:
                try:
                    os.unlink(self._cli_path)
                except OSError:
                    pass
        if self.pidfile:
            try:
                os.unlink(self.pidfile)
            except OSError:
                pass
        self.finished.callback(code)
        if self.on_exit is not None:
            self.on_exit(code)

    # ------------------------------------------------------------------ master CLI
    def _listen_cli(self, text: str) -> Any:
        address = text.split(",", 1)[0]
        factory = MasterCliFactory(self)
        if address.startswith(("ipv4@", "ipv6@")) or (":" in address and not address.startswith("unix@")):
            host, _, port = address.split("@", 1)[-1].rpartition(":")
            return self.reactor.listenTCP(int(port), factory, interface=host.strip("[]") or "")
        path = address.split("@", 1)[1] if address.startswith("unix@") else address
        self._cli_path = path
        spec = ListenerSpec("master-cli", Address("unix", path=path), mode=0o600)
        from minilb.net.endpoints import UnixListener

        port = UnixListener(path.encode(), factory, reactor=self.reactor)
        port.adopt(self._binder(spec))
        return port

    def proc_text(self) -> str:
        now = self.reactor.seconds()
        master = ProcRow(
            os.getpid(),
            "master",
            f"{self.reloads} [failed: {self.failed_reloads}]",
            time.time() - self._start_time,
            VERSION,
        )
        current, old = [], []
        serving = self.current_worker()
        for w in sorted(self.generations.alive(), key=lambda w: -w.gen):
            row = ProcRow(
                w.pid,
                "worker",
                str(self.reloads - self.reloads_at_spawn.get(w.gen, self.reloads)),
                now - self.started_at.get(w.gen, now),
                VERSION,
            )
            (current if w is serving else old).append(row)
        return show_proc(master, current, old)

    def current_worker(self) -> g.Worker | None:
        """The worker ``@1`` names: the newest that serves (before any is ready, the
        one starting)."""
        current = self.generations.current
        if current is not None:
            return current
        starting = [w for w in self.generations.alive() if w.state == g.STARTING]
        return min(starting, key=lambda w: w.gen) if starting else None

    def worker_for(self, target: str) -> int | None:
        """The generation of ``@1`` (the current worker) or ``@!PID`` (any live worker)."""
        if target == "1":
            w = self.current_worker()
            return w.gen if w is not None else None
        if target.startswith("!") and target[1:].isdigit():
            for w in self.generations.alive():
                if w.pid == int(target[1:]):
                    return w.gen
        return None

    def forward(self, target: str, command: str, client: Any) -> defer.Deferred:
        """Run ``command`` on the worker ``target`` names (`worker_for`), streaming its
        answer to ``client`` (a transport); fires when the worker closed the connection."""
        gen = self.worker_for(target)
        name = self.worker_cli.get(gen) if gen is not None else None
        if name is None:
            client.write(f"Can't find the target PID matching the prefix '@{target}'\n".encode())
            return defer.succeed(None)
        done: defer.Deferred = defer.Deferred()
        factory = _ForwardFactory(command, client, done)
        self.reactor.connectUNIX("\0" + name, factory, timeout=5)
        return done


HELP = (
    "help           : this message\n"
    "show proc      : show processes status\n"
    "reload         : reload haproxy\n"
    "@1 <command>   : send a command to the current worker\n"
    "@!<pid> <command> : send a command to the worker of that pid (current or old)\n"
    "quit           : leave this session\n\n"
)


class MasterCliProtocol(LineOnlyReceiver):
    """One master CLI connection: the lines that arrived together run in order (a
    forwarded command waits for the worker's answer), then the connection closes."""

    delimiter = b"\n"
    MAX_LENGTH = MAX_CLI_LINE

    def __init__(self, master: MasterService):
        self.master = master
        self.queue: list[str] = []
        self.busy = False
        self.closing = False

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        self.closing = True
        self._run()

    def lineReceived(self, line: bytes) -> None:
        if len(self.queue) < 64:
            self.queue.append(line.rstrip(b"\r").decode("utf-8", "replace").strip())

    def lineLengthExceeded(self, line: bytes) -> None:
        self.transport.loseConnection()

    def _run(self) -> None:
        while not self.busy and self.queue:
            line = self.queue.pop(0)
            if not line:
                continue
            if line.startswith("@"):
                target, _, command = line[1:].partition(" ")
                self.busy = True
                d = self.master.forward(target, command.strip(), self.transport)
                d.addBoth(self._forwarded)
                return
            self._command(line)
        if not self.busy and self.closing and not self.queue:
            self.transport.loseConnection()

    def _forwarded(self, result: Any) -> None:
        self.busy = False
        self._run()

    def _command(self, line: str) -> None:
        words = line.split()
        if words == ["help"]:
            self.transport.write(HELP.encode())
        elif words == ["show", "proc"]:
            self.transport.write(self.master.proc_text().encode())
        elif words == ["reload"]:
            self.master.reactor.callLater(0, self.master.reload)
            self.queue.clear()  # as haproxy: a reload closes the master CLI connection
        elif words == ["quit"]:
            self.queue.clear()
        else:
            self.transport.write(b"Unknown command. Please enter one of the following commands only :\n")
            self.transport.write(HELP.encode())


class MasterCliFactory(protocol.Factory):
    def __init__(self, master: MasterService):
        self.master = master

    def buildProtocol(self, addr) -> MasterCliProtocol:
        proto = MasterCliProtocol(self.master)
        proto.factory = self
        return proto


class _Forward(protocol.Protocol):
    def connectionMade(self) -> None:
        self.factory.connected = True
        self.transport.write(self.factory.command.encode() + b"\n")
        self.factory.client.registerProducer(self.transport, True)

    def dataReceived(self, data: bytes) -> None:
        self.factory.client.write(data)

    def connectionLost(self, reason) -> None:
        self.factory.client.unregisterProducer()
        self.factory.finish()


class _ForwardFactory(protocol.ClientFactory):
    protocol = _Forward

    def __init__(self, command: str, client: Any, done: defer.Deferred):
        self.command = command
        self.client = client
        self.done = done
        self.connected = False

    def clientConnectionFailed(self, connector, reason) -> None:
        self.client.write(f"Failed to connect to the worker: {reason.getErrorMessage()}\n".encode())
        self.finish()

    def finish(self) -> None:
        if not self.done.called:
            self.done.callback(None)
