"""The worker process entry point, started by the master (`minilb.master.service`):

    python -m minilb.worker --gen N -f CFG [-f CFG ...] [-L NAME] [--hostname H]
                            [--old-worker] --fds '{"<listener key>": FD, ...}'

Owns the process-level wiring: the control channel (stdin from the master, stdout
to it; both are moved to private fds at once so that nothing else printing to
stdout can corrupt the channel: fd 1 becomes the master's stdout, inherited under
the ``stdout`` key of ``--fds``), signals (SIGTERM
stops at once; SIGINT, SIGHUP, SIGUSR1/2 are the master's business and ignored), the
global reactor, and the exit status.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def _log(level: str, message: str) -> None:
    tag = f"[{level.upper()}]"
    print(f"{tag:<11}({os.getpid()}) : {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m minilb.worker")
    parser.add_argument("-f", dest="paths", action="append", required=True)
    parser.add_argument("-L", dest="localpeer")
    parser.add_argument("--hostname")
    parser.add_argument("--gen", type=int, default=1)
    parser.add_argument("--old-worker", action="store_true")
    parser.add_argument("--fds", required=True)
    return parser.parse_args(argv)


def _private_control_fds(stdout_fd: int | None) -> tuple[int, int]:
    """Move the control channel off fds 0 and 1; fd 0 becomes /dev/null and fd 1 the
    master's stdout (passed as ``stdout_fd``), else a copy of stderr."""
    ctl_in = os.dup(0)
    ctl_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    if stdout_fd is not None:
        os.dup2(stdout_fd, 1)
        os.close(stdout_fd)
    else:
        os.dup2(2, 1)
    return ctl_in, ctl_out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from minilb import reloadtrace

    if reloadtrace.ENABLED:
        reloadtrace.mark(f"worker #{args.gen}: main (process started at {reloadtrace.process_started():.6f})")
    from minilb.master.control import decode_fd_map

    fds = decode_fd_map(args.fds)
    ctl_in, ctl_out = _private_control_fds(fds.pop("stdout", None))
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)

    from minilb.check import check_config
    from minilb.config.render import render_diagnostic

    result = check_config(args.paths, localpeer=args.localpeer, environ=os.environ, hostname=args.hostname)
    reloadtrace.mark(f"worker #{args.gen}: configuration checked")
    if not result.ok:
        for diag in result.diagnostics:
            _log("alert", render_diagnostic(diag))
        return 1

    from minilb.tcp.reactor import install_if_unset

    install_if_unset()  # the worker carries the traffic: the leaner epoll dispatch
    from twisted.internet import reactor, stdio

    from minilb.worker.control import ControlProtocol
    from minilb.worker.process import WorkerProcess

    reloadtrace.mark(f"worker #{args.gen}: imports done")
    state = {"code": 0, "stopping": False, "exiting": False}

    def exit_now(code: int) -> None:
        state["code"] = code
        state["exiting"] = True
        if reactor.running:
            reactor.stop()

    def hard_stop(why: str) -> None:
        if state["exiting"]:
            return
        state["exiting"] = True
        _log("notice", f"worker #{args.gen}: {why}: exiting now")
        exit_now(0)

    worker = WorkerProcess(result.config, reactor, fds, has_old_process=args.old_worker, log=_log)
    reloadtrace.mark(f"worker #{args.gen}: services built")

    def soft_stop() -> None:
        if state["stopping"]:
            return
        state["stopping"] = True
        reloadtrace.mark(f"worker #{args.gen}: soft stop")
        d = worker.soft_stop()
        d.addBoth(lambda _: exit_now(0))

    control = ControlProtocol(soft_stop, hard_stop, _log)

    def start() -> None:
        try:
            worker.start()
        except Exception as exc:  # a socket that cannot be adopted, a TLS file...
            _log("alert", f"worker #{args.gen}: cannot start: {exc}")
            exit_now(1)
            return
        control.send("ready")
        reloadtrace.mark(f"worker #{args.gen}: ready sent")

    stdio.StandardIO(control, stdin=ctl_in, stdout=ctl_out, reactor=reactor)
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(hard_stop, "SIGTERM"))
    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    reloadtrace.mark(f"worker #{args.gen}: exit")
    return state["code"]


if __name__ == "__main__":
    sys.exit(main())
