"""Owns minilb's command lines: the twistd plugin's options and service, and the
``minilb`` console script that takes HAProxy 2.6's own command line.

Entry points only: this is the one module (with ``plugins/minilb_plugin.py`` and
``minilb/__main__.py``) that touches ``sys.argv``, the global reactor, signals and
the process (daemon fork, pid file).  Everything below it receives a reactor.

``minilb`` signals, as HAProxy's (``-sf``/``-st`` send them to old processes):

* SIGUSR1: soft stop — stop the service (listeners close, connections finish) and exit;
* SIGTERM, SIGINT: hard stop — exit now;
* SIGTTOU / SIGTTIN: HAProxy's "pause/resume listeners" are not needed: TCP listeners
  are bound with SO_REUSEPORT, so a new process binds while the old one listens.

Master-worker mode (``-W``, ``-Ws``, ``master-worker`` in global, ``-S`` master CLI)
and ``twistd minilb`` run `minilb.master.service.MasterService`: the master binds every
listener and runs the load balancer in a worker process; SIGUSR2 and SIGHUP reload.
Without it, ``minilb`` runs one process (`StandaloneWorker`) with the same worker
code on sockets it binds itself.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
from collections.abc import Callable, Sequence

import attrs
from twisted.application import service
from twisted.python import usage

import minilb

# --------------------------------------------------------------------------- version and usage


def version_lines(verbose: bool = False) -> list[str]:
    """``-v``: HAProxy's three version lines, saying minilb and the HAProxy version it follows."""
    uname = platform.uname()
    lines = [
        f"minilb version {minilb.__version__} - HAProxy version {minilb.HAPROXY_COMPAT_VERSION} compatible"
        " load balancer on Twisted",
        f"Status: development; follows HAProxy {minilb.HAPROXY_COMPAT_VERSION}'s configuration language,"
        " command line and peers protocol.",
        f"Running on: {uname.system} {uname.release} {uname.version} {uname.machine}",
    ]
    if verbose:
        lines.extend(build_option_lines())
    return lines


def build_option_lines() -> list[str]:
    import OpenSSL
    import twisted
    from OpenSSL import SSL

    return [
        "Build options :",
        f"  PYTHON  = {platform.python_implementation()} {platform.python_version()}",
        f"  TWISTED = {twisted.__version__}",
        f"  PYOPENSSL = {OpenSSL.__version__}",
        "",
        "Feature list : +OPENSSL +TFO -QUIC -LUA -THREAD +SO_REUSEPORT +ABNS +FD_INHERIT",
        "",
        "Default settings :",
        "  bufsize = 16384, maxrewrite = 1024",
        "",
        f"Running on OpenSSL version : {SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode()}",
        "OpenSSL library supports TLS extensions : yes",
        "OpenSSL library supports SNI : yes",
        "OpenSSL library supports : TLSv1.2 TLSv1.3",
    ]


USAGE = """\
Usage : minilb [-f <cfgfile|cfgdir>]* [ -vdVD ] [ -n <maxconn> ] [ -N <maxpconn> ]
        [ -p <pidfile> ] [ -m <max megs> ] [ -C <dir> ] [-- <cfgfile>*]
        -v displays version ; -vv shows known build options.
        -d enters debug mode ; -db only disables background mode.
        -V enters verbose mode (disables quiet mode)
        -D goes daemon ; -C changes to <dir> before loading files.
        -W master-worker mode (a master owns the sockets; SIGUSR2/SIGHUP reload the worker).
        -Ws master-worker mode with systemd notify support (as -W; no sd_notify).
        -q quiet mode : don't display messages
        -c check mode : only check config files and exit
        -n sets the maximum total # of connections (accepted, ignored)
        -m limits the usable amount of memory (in MB) (accepted, ignored)
        -N sets the default, per-proxy maximum # of connections (accepted, ignored)
        -L set local peer name (default to hostname)
        -p writes pids of all children to this file
        -de/-dp/-dS/-dG/-dR/-dr/-dV/-dW/-dD/-dL debug switches (accepted; -dW fails on warnings)
        -sf/-st [pid ]* finishes/terminates old pids (SIGUSR1 soft stop / SIGTERM).
        -x <unix_socket> get listening sockets from a unix socket (accepted, not used)
        -S <bind>[,<bind options>...] new master CLI
"""


# --------------------------------------------------------------------------- HAProxy's command line


class UsageError(Exception):
    """A command line minilb (like HAProxy) refuses: print usage, exit 1."""


@attrs.define
class HaproxyArgs:
    """What an HAProxy 2.6 command line asks for."""

    files: list[str] = attrs.Factory(list)
    check: bool = False
    version: int = 0  # 1 for -v, 2 for -vv
    localpeer: str | None = None
    foreground: bool = False  # -d / -db
    debug: bool = False  # -d
    daemon: bool = False  # -D
    master_worker: bool = False  # -W / -Ws
    systemd: bool = False  # -Ws
    master_cli: list[str] = attrs.Factory(list)  # -S
    pidfile: str | None = None
    soft_stop_pids: list[int] = attrs.Factory(list)  # -sf
    hard_stop_pids: list[int] = attrs.Factory(list)  # -st
    quiet: bool = False
    verbose: bool = False
    chdir: str | None = None
    maxconn: int | None = None
    maxpconn: int | None = None
    mem_mb: int | None = None
    fail_on_warnings: bool = False  # -dW
    socket_transfer: str | None = None  # -x
    debug_flags: list[str] = attrs.Factory(list)


_HARMLESS_DEBUG = ("-de", "-dp", "-dS", "-dG", "-dR", "-dr", "-dV", "-dD", "-dL", "-dk", "-dW")


def parse_haproxy_args(argv: Sequence[str]) -> HaproxyArgs:
    """Parse HAProxy's command line (without the program name); raises `UsageError`."""
    args = HaproxyArgs()
    words = list(argv)
    i = 0

    def value(flag: str) -> str:
        nonlocal i
        if i + 1 >= len(words):
            raise UsageError(f"option '{flag}' requires an argument")
        i += 1
        return words[i]

    def number(flag: str) -> int:
        text = value(flag)
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"option '{flag}' expects a number, not '{text}'") from None

    while i < len(words):
        w = words[i]
        if w == "--":
            args.files.extend(words[i + 1 :])
            break
        if not w.startswith("-") or w == "-":
            raise UsageError(f"unexpected argument '{w}'")
        if w in ("-h", "--help"):
            raise UsageError("")  # usage and exit 1, as haproxy -h
        if w == "-f":
            args.files.append(value(w))
        elif w == "-c":
            args.check = True
        elif w == "-v":
            args.version = max(args.version, 1)
        elif w == "-vv":
            args.version = 2
        elif w == "-L":
            args.localpeer = value(w)
        elif w == "-d":
            args.foreground = args.debug = True
        elif w == "-db":
            args.foreground = True
        elif w == "-D":
            args.daemon = True
        elif w in ("-W", "-Ws"):
            args.master_worker = True
            args.systemd = args.systemd or w == "-Ws"
        elif w == "-S":
            args.master_cli.append(value(w))
        elif w == "-p":
            args.pidfile = value(w)
        elif w in ("-sf", "-st"):
            target = args.soft_stop_pids if w == "-sf" else args.hard_stop_pids
            while i + 1 < len(words) and not words[i + 1].startswith("-"):
                i += 1
                try:
                    pid = int(words[i])
                except ValueError:
                    raise UsageError(f"'{w}' expects process ids, not '{words[i]}'") from None
                if pid <= 0:
                    raise UsageError(f"'{w}' expects positive process ids, not '{words[i]}'")
                target.append(pid)
        elif w == "-q":
            args.quiet = True
        elif w == "-V":
            args.verbose = True
        elif w == "-C":
            args.chdir = value(w)
        elif w == "-n":
            args.maxconn = number(w)
        elif w == "-N":
            args.maxpconn = number(w)
        elif w == "-m":
            args.mem_mb = number(w)
        elif w == "-x":
            args.socket_transfer = value(w)
        elif w in _HARMLESS_DEBUG or w.startswith(("-dM", "-dK")):
            args.debug_flags.append(w)
            if w == "-dW":
                args.fail_on_warnings = True
        else:
            raise UsageError(f"unknown option '{w}'")
        i += 1
    return args


# --------------------------------------------------------------------------- shared steps


def load_checked(paths: Sequence[str], localpeer: str | None, fail_on_warnings: bool = False):
    """Load and validate through check mode; returns `minilb.check.CheckResult`.
    ``fail_on_warnings`` (``-dW``) makes any warning fatal, as ``zero-warning``."""
    from minilb.check import ZERO_WARNING_ABORT, check_config
    from minilb.errors import ALERT, WARNING, Diagnostic

    result = check_config(paths, localpeer=localpeer, environ=os.environ)
    if fail_on_warnings and result.ok and any(d.severity == WARNING for d in result.diagnostics):
        abort = Diagnostic(ALERT, ZERO_WARNING_ABORT)
        result = attrs.evolve(result, ok=False, config=None, diagnostics=(*result.diagnostics, abort))
    return result


def print_check_lines(lines: Sequence[str], quiet: bool, out=None, err=None) -> None:
    """Diagnostics go to stderr, the verdict lines to stdout (as haproxy -c)."""
    out = out or sys.stdout
    err = err or sys.stderr
    for line in lines:
        is_diag = line.startswith(("[", "   |"))
        if quiet and not line.startswith("[ALERT]"):
            continue
        print(line, file=err if is_diag else out)


def run_check(
    paths: Sequence[str], localpeer: str | None, quiet: bool = False, fail_on_warnings=False
) -> int:
    """Check mode: print as ``haproxy -c`` does and return its exit status (0 valid,
    1 errors, 2 valid but nothing would listen)."""
    from minilb.check import render_check

    code, lines = render_check(load_checked(paths, localpeer, fail_on_warnings))
    print_check_lines(lines, quiet)
    return code


NO_LISTENER_ALERT = "[ALERT]    (minilb) : No enabled listener found (check for 'bind' directives) ! Exiting."


def load_for_run(paths: Sequence[str], localpeer: str | None, quiet: bool = False, fail_on_warnings=False):
    """The validated config to run, or None after printing every problem (then exit 1)."""
    from minilb.check import render_check

    result = load_checked(paths, localpeer, fail_on_warnings)
    code, lines = render_check(result)
    diagnostics = [line for line in lines if line.startswith(("[", "   |"))]
    if code == 1 or result.config is None:
        print_check_lines(diagnostics, quiet=False)
        return None
    print_check_lines(diagnostics, quiet)
    if code == 2:  # valid, but nothing would listen: haproxy refuses to start
        print(NO_LISTENER_ALERT, file=sys.stderr)
        return None
    return result.config


# --------------------------------------------------------------------------- twistd plugin


class Options(usage.Options):
    """``twistd [-n] minilb -c FILE [-c FILE ...] [-L NAME] [--check]``."""

    synopsis = "-c FILE [-c FILE ...] [-L NAME] [--check]"
    longdesc = (
        "Run minilb, an HAProxy 2.6 compatible HTTP/TCP load balancer, on the configuration files "
        "given with -c (loaded in order; a directory contributes its *.cfg files)."
    )
    optFlags = [
        [
            "check",
            None,
            "Validate the configuration like 'haproxy -c' and exit (0 valid, 1 errors, 2 nothing to listen on).",
        ]
    ]
    optParameters = [["localpeer", "L", None, "Local peer name (default: the host name)."]]

    def __init__(self):
        super().__init__()
        self["config"] = []

    def opt_config(self, path: str) -> None:
        """Configuration file or directory (repeatable, loaded in order)."""
        self["config"].append(path)

    opt_c = opt_config

    def postOptions(self) -> None:
        if not self["config"]:
            raise usage.UsageError("at least one configuration file is required: -c FILE")


def makeService(options: Options):
    """twistd's entry: check mode exits here; a bad configuration exits 1 with every
    diagnostic printed and no traceback.  Otherwise the service is the master
    (`minilb.master.service.MasterService`): it binds every listener and runs the load
    balancer in a worker process; SIGUSR2 and SIGHUP reload (twistd keeps SIGUSR1
    for log rotation)."""
    from twisted.internet import reactor

    paths = options["config"]
    localpeer = options["localpeer"]
    if options["check"]:
        raise SystemExit(run_check(paths, localpeer))
    config = load_for_run(paths, localpeer)
    if config is None:
        raise SystemExit(1)
    from minilb.master.service import MasterService

    guard = StartupGuard()
    master = MasterService(
        paths,
        localpeer=localpeer,
        environ=os.environ,
        reactor=reactor,
        pidfile=None,  # twistd writes its own pidfile (--pidfile)
        on_exit=lambda code: reactor.stop() if reactor.running else None,
    )
    master.setServiceParent(guard)
    reactor.callWhenRunning(install_reload_signals, reactor, master)
    return guard


def install_reload_signals(reactor, master) -> None:
    """SIGUSR2 and SIGHUP reload the master (under twistd, which owns SIGINT/SIGTERM)."""
    for signum in (signal.SIGUSR2, signal.SIGHUP):
        signal.signal(signum, lambda *_: reactor.callFromThread(master.reload))


def startup_alert(exc: Exception) -> str:
    """HAProxy's start-up alert for a listener or TLS file that cannot be used."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"[ALERT]    ({os.getpid()}) : Starting proxies: {text}"


class StartupGuard(service.MultiService):
    """Holds the worker service under twistd: a bind or certificate failure at start
    prints HAProxy's alert and exits 1 instead of a traceback."""

    def startService(self) -> None:
        try:
            super().startService()
        except Exception as e:
            print(startup_alert(e), file=sys.stderr, flush=True)
            raise SystemExit(1) from None


# --------------------------------------------------------------------------- minilb console script


def daemonize() -> None:
    """Fork into the background as HAProxy's ``-D``: the parent exits 0."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def signal_old_processes(pids: Sequence[int], signum: int, err=None) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError as e:
            print(
                f"[WARNING]  (minilb) : cannot signal old process {pid}: {e.strerror}", file=err or sys.stderr
            )


_PREFIXES = {"alert": "[ALERT]    ", "warning": "[WARNING]  ", "notice": "[NOTICE]   "}


def stderr_log(quiet: bool = False) -> Callable[[str, str], None]:
    """The worker's ``log(level, message)`` for ``minilb``: HAProxy's stderr lines,
    ``[WARNING]  (PID) : message``; ``-q`` keeps only alerts."""

    def log(level: str, message: str) -> None:
        if quiet and level != "alert":
            return
        prefix = _PREFIXES.get(level, f"[{level.upper()}] ")
        print(f"{prefix}({os.getpid()}) : {message}", file=sys.stderr, flush=True)

    return log


def _notice(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"[NOTICE]   ({os.getpid()}) : {message}", file=sys.stderr)


def haproxy_main(argv: Sequence[str] | None = None, run: Callable | None = None) -> int:
    """``minilb`` with HAProxy 2.6's command line; returns the exit status.

    ``run(config, args)`` replaces the reactor run in tests."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_haproxy_args(argv)
    except UsageError as e:
        print("\n".join(version_lines()))
        if str(e):
            print(f"[ALERT]    (minilb) : {e}", file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        return 1
    if args.version:
        print("\n".join(version_lines(args.version >= 2)))
        return 0
    if args.chdir:
        try:
            os.chdir(args.chdir)
        except OSError as e:
            print(
                f"[ALERT]    (minilb) : cannot change directory to '{args.chdir}': {e.strerror}",
                file=sys.stderr,
            )
            return 1
    if not args.files:
        print("\n".join(version_lines()))
        print(USAGE, end="", file=sys.stderr)
        return 1
    if args.check:
        return run_check(args.files, args.localpeer, quiet=args.quiet, fail_on_warnings=args.fail_on_warnings)
    config = load_for_run(
        args.files, args.localpeer, quiet=args.quiet, fail_on_warnings=args.fail_on_warnings
    )
    if config is None:
        return 1
    return (run or run_foreground)(config, args)


def run_foreground(config, args: HaproxyArgs) -> int:
    """Run on the global reactor until a stop signal: the master and its workers with
    ``-W``/``-Ws``/``-S`` or global ``master-worker``, else one process (as haproxy)."""
    quiet = args.quiet or config.global_.quiet
    from minilb.tcp.reactor import install_if_unset

    install_if_unset()  # a single process carries the traffic: the leaner epoll dispatch
    from twisted.internet import reactor
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    # Twisted's own chatter (ports starting and stopping) only with -d, as haproxy is quiet
    level = LogLevel.debug if args.debug else LogLevel.warn
    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(defaultLogLevel=level)]
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    if args.master_worker or config.global_.master_worker or args.master_cli:
        return run_master(config, args, reactor)
    service = StandaloneWorker(
        config, reactor, stderr_log(quiet), has_old_process=bool(args.soft_stop_pids or args.hard_stop_pids)
    )
    try:
        service.startService()  # binds now: a failure is reported before any fork, as haproxy
    except Exception as e:
        print(startup_alert(e), file=sys.stderr)
        return 1
    pidfile = args.pidfile or config.global_.pidfile
    pid_out = None
    if pidfile:
        try:
            pid_out = open(pidfile, "w")
        except OSError as e:
            print(
                f"[ALERT]    ({os.getpid()}) : [minilb.main()] Cannot create pidfile {pidfile}",
                file=sys.stderr,
            )
            print(f"[ALERT]    ({os.getpid()}) : {e.strerror}", file=sys.stderr)
            return 1
    if (args.daemon or config.global_.daemon) and not args.foreground:
        daemonize()  # the listeners and the reactor's state carry over to the daemon
    if pid_out is not None:
        with pid_out:
            pid_out.write(f"{os.getpid()}\n")
    signal_old_processes(args.soft_stop_pids, signal.SIGUSR1)
    signal_old_processes(args.hard_stop_pids, signal.SIGTERM)
    install_stop_signals(reactor, service, config.global_.hard_stop_after)
    reactor.run(installSignalHandlers=False)
    return 0


def run_master(config, args: HaproxyArgs, reactor) -> int:
    """``-W``: the master binds every listener, runs the load balancer in a worker
    process and reloads it on SIGUSR2/SIGHUP (`minilb.master.service`)."""
    from minilb.master.run import install_signal_handlers
    from minilb.master.service import MasterService, StartupError

    if (args.daemon or config.global_.daemon) and not args.foreground:
        daemonize()  # before any worker exists, so that the daemon is their parent
    master = MasterService(
        args.files,
        localpeer=args.localpeer,
        environ=os.environ,
        reactor=reactor,
        pidfile=args.pidfile or config.global_.pidfile,
        master_socket=args.master_cli[0] if args.master_cli else None,
        on_exit=lambda code: reactor.stop() if reactor.running else None,
    )
    try:
        master.startService()
    except StartupError:
        return 1
    signal_old_processes(args.soft_stop_pids, signal.SIGUSR1)
    signal_old_processes(args.hard_stop_pids, signal.SIGTERM)
    reactor.addSystemEventTrigger("before", "shutdown", master.stopService)
    reactor.callWhenRunning(install_signal_handlers, reactor, master)
    reactor.run()
    return master.exit_code or 0


class StandaloneWorker(service.Service):
    """The whole load balancer in this one process (no master): binds its listeners
    like the master would, then runs a `WorkerProcess` on them — frontends, stats
    sockets, peers sections and table expiry.  Stopping is the worker's soft stop:
    stop accepting, teach the tables to a successor at the local peer address (the
    process started with ``-sf``), drain."""

    def __init__(self, config, reactor, log, *, has_old_process: bool = False):
        from minilb.master.control import listener_specs
        from minilb.master.sockets import Listeners

        self.config = config
        self.reactor = reactor
        self.log = log
        self.has_old_process = has_old_process
        self.listeners = Listeners()
        self._specs = listener_specs(config)
        self.worker = None

    def startService(self) -> None:
        from minilb.worker.process import WorkerProcess

        self.listeners.prepare(self._specs.values())
        try:
            fds = {key: self.listeners.fileno(key) for key in self._specs}
            self.worker = WorkerProcess(
                self.config, self.reactor, fds, has_old_process=self.has_old_process, log=self.log
            )
            self.worker.start()
        except Exception:
            self.listeners.close_all()
            raise
        super().startService()

    def stopService(self):
        from twisted.internet import defer

        super().stopService()
        if self.worker is None:
            return defer.succeed(None)
        d = self.worker.soft_stop()
        # the adopted ports are closed by the soft stop; our own copies must go too, or
        # SO_REUSEPORT would keep handing connections to a socket nobody accepts on
        self.listeners.close_all()
        return d


def install_stop_signals(reactor, service, hard_stop_after_ms: int | None) -> None:
    """SIGUSR1: soft stop (stop the service, wait for it, exit); SIGTERM/SIGINT: exit now."""
    from twisted.internet import defer

    stopping = {"soft": False}

    def stop_now() -> None:
        if getattr(service, "running", False):
            try:
                service.stopService()
            except Exception as e:  # exiting anyway
                print(f"[WARNING]  ({os.getpid()}) : error while stopping: {e}", file=sys.stderr)
        if reactor.running:
            reactor.stop()

    def soft_stop() -> None:
        if stopping["soft"]:
            return
        stopping["soft"] = True
        d = (
            defer.maybeDeferred(service.stopService)
            if getattr(service, "running", False)
            else defer.succeed(None)
        )
        d.addBoth(lambda _: reactor.stop() if reactor.running else None)
        if hard_stop_after_ms:
            reactor.callLater(hard_stop_after_ms / 1000.0, stop_now)

    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(stop_now))
    signal.signal(signal.SIGINT, lambda *_: reactor.callFromThread(stop_now))
    signal.signal(signal.SIGUSR1, lambda *_: reactor.callFromThread(soft_stop))
