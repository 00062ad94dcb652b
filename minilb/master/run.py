"""The master process entry point: ``python -m minilb.master -f CFG [-f CFG ...]
[-L NAME] [-p PIDFILE] [-S MASTER_SOCKET]``.

Owns the process-level wiring of `MasterService`: the global reactor (run with its
signal handlers so that worker exits are reaped), SIGUSR2 and SIGHUP as reload,
SIGTERM and SIGINT as a fast stop, and the exit status (the current worker dying
unexpectedly exits with an error).
"""

from __future__ import annotations

import argparse
import signal
import sys


def install_signal_handlers(reactor, master) -> None:
    """SIGUSR2/SIGHUP reload; SIGTERM/SIGINT stop every worker at once, then exit."""

    def reload(*_):
        reactor.callFromThread(master.reload)

    def stop(*_):
        reactor.callFromThread(_stop, reactor)

    signal.signal(signal.SIGUSR2, reload)
    signal.signal(signal.SIGHUP, reload)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _stop(reactor) -> None:
    if reactor.running:
        reactor.stop()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m minilb.master")
    parser.add_argument("-f", dest="paths", action="append", required=True)
    parser.add_argument("-L", dest="localpeer")
    parser.add_argument("-p", dest="pidfile")
    parser.add_argument("-S", dest="master_socket")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from twisted.internet import reactor

    from minilb.master.service import MasterService, StartupError

    master = MasterService(
        args.paths,
        localpeer=args.localpeer,
        reactor=reactor,
        pidfile=args.pidfile,
        master_socket=args.master_socket,
        on_exit=lambda code: _stop(reactor),
    )
    try:
        master.startService()
    except StartupError:
        return 1
    reactor.addSystemEventTrigger("before", "shutdown", master.stopService)
    reactor.callWhenRunning(install_signal_handlers, reactor, master)
    reactor.run()
    return master.exit_code or 0
