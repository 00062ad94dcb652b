"""Owns the master's worker generations: which worker serves, which drains, and what to do next.

A pure state machine (no processes, no reactor): the master adapter feeds it
events — start, reload with a checked configuration, a worker reported ready, a
worker exited, the clock passed a deadline, a stop was asked — and carries out
the actions it returns (`Spawn`, `SoftStop`, `HardStop`, `Log`, `Exit`).

The rules, as HAProxy's master-worker mode has them:

- a reload with an invalid configuration logs every problem and changes nothing;
- a valid reload spawns generation N+1 on the same sockets; only when it reports
  ready are the older generations soft-stopped (so a new worker that fails to
  start leaves the old one serving);
- a reload while an earlier new worker is still starting supersedes it: that one
  is soft-stopped at once and never serves as the current worker, so the serving
  worker hands its tables straight to the newest (the workers share the local peer
  listener: with two successors listening, the hand-over could go to either);
- a soft-stopped worker gets ``hard-stop-after`` to drain, then it is killed;
- a worker of the newest generation dying unexpectedly is fatal: the master logs
  it and exits with an error; an old worker exiting is logged;
- a stop stops every worker (fast: at once; graceful: soft stop) and the master
  exits when the last one is gone.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from minilb.timebase import Clock, now_ms

STARTING = "starting"
SERVING = "serving"
STOPPING = "stopping"
EXITED = "exited"


# --------------------------------------------------------------------------- actions


@attrs.frozen
class Spawn:
    gen: int
    config: object


@attrs.frozen
class SoftStop:
    gen: int


@attrs.frozen
class HardStop:
    gen: int


@attrs.frozen
class Log:
    level: str  # "notice" | "warning" | "alert"
    message: str


@attrs.frozen
class Exit:
    code: int


Action = Spawn | SoftStop | HardStop | Log | Exit


@attrs.define
class Worker:
    gen: int
    state: str = STARTING
    pid: int | None = None
    #: when a starting worker is given up, or a stopping one is killed (ms), or None
    deadline: int | None = None


class Generations:
    """The master's view of its workers.

    ``hard_stop_after_ms``: how long a soft-stopped worker may drain (None: forever).
    ``ready_timeout_ms``: how long a new worker may take to report ready before the
    reload is abandoned and the new worker killed.
    """

    def __init__(
        self, clock: Clock, *, hard_stop_after_ms: int | None = None, ready_timeout_ms: int = 30_000
    ):
        self._clock = clock
        self.hard_stop_after_ms = hard_stop_after_ms
        self.ready_timeout_ms = ready_timeout_ms
        self.workers: dict[int, Worker] = {}
        self._last_gen = 0
        self._stopping_master = False
        self._exit_code = 0

    # ------------------------------------------------------------------ queries

    @property
    def current(self) -> Worker | None:
        """The newest worker that serves (or, before any is ready, None)."""
        serving = [w for w in self.workers.values() if w.state == SERVING]
        return max(serving, key=lambda w: w.gen) if serving else None

    def alive(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.state != EXITED]

    def next_deadline(self) -> int | None:
        deadlines = [w.deadline for w in self.alive() if w.deadline is not None]
        return min(deadlines) if deadlines else None

    # ------------------------------------------------------------------ events

    def start(self, config: object) -> list[Action]:
        return [self._spawn(config)]

    def worker_started(self, gen: int, pid: int) -> None:
        self.workers[gen].pid = pid

    def reload(self, config: object | None, problems: Sequence[str] = ()) -> list[Action]:
        """A reload was asked; ``config`` is the new checked configuration, or None
        when it is invalid (``problems`` then says why)."""
        if self._stopping_master:
            return [Log("warning", "reload ignored: the master is stopping")]
        if config is None:
            actions: list[Action] = [Log("alert", p) for p in problems]
            actions.append(
                Log(
                    "alert",
                    "reload aborted: the new configuration is invalid; the running worker keeps serving",
                )
            )
            return actions
        actions = [Log("notice", "Reloading: starting a new worker")]
        for w in sorted(self.workers.values(), key=lambda x: x.gen):
            if w.state == STARTING and self.current is not None:
                actions.append(
                    Log(
                        "notice",
                        f"worker #{w.gen} (pid {w.pid}) is superseded before it was ready: stopping it",
                    )
                )
                actions.extend(self._soft_stop(w))
        actions.append(self._spawn(config))
        return actions

    def worker_ready(self, gen: int) -> list[Action]:
        w = self.workers.get(gen)
        if w is None or w.state != STARTING:
            return []
        w.state = SERVING
        w.deadline = None
        actions: list[Action] = [Log("notice", f"worker #{gen} (pid {w.pid}) is ready")]
        for old in sorted(self.workers.values(), key=lambda x: x.gen):
            if old.gen < gen and old.state in (STARTING, SERVING):
                actions.extend(self._soft_stop(old))
        return actions

    def worker_exited(self, gen: int, code: int | None) -> list[Action]:
        w = self.workers.get(gen)
        if w is None or w.state == EXITED:
            return []
        previous = w.state
        w.state = EXITED
        w.deadline = None
        actions: list[Action] = []
        if previous == STOPPING or self._stopping_master:
            actions.append(Log("notice", f"Former worker #{gen} (pid {w.pid}) exited with code {code}"))
        elif previous == STARTING and self.current is not None:
            actions.append(
                Log(
                    "alert",
                    f"New worker #{gen} (pid {w.pid}) exited with code {code} before it was ready; "
                    f"worker #{self.current.gen} keeps serving",
                )
            )
        else:
            actions.append(
                Log(
                    "alert",
                    f"Current worker #{gen} (pid {w.pid}) exited with code {code}: exiting the master",
                )
            )
            for other in self.alive():
                actions.append(HardStop(other.gen))
            self._stopping_master = True
            self._exit_code = code or 1
            if not self.alive():
                actions.append(Exit(self._exit_code))
            return actions
        if self._stopping_master and not self.alive():
            actions.append(Exit(self._exit_code))
        return actions

    def stop(self, *, fast: bool) -> list[Action]:
        """SIGTERM/SIGINT (fast) or a graceful stop of everything."""
        self._stopping_master = True
        self._exit_code = 0
        actions: list[Action] = []
        for w in sorted(self.alive(), key=lambda x: x.gen):
            if fast:
                actions.append(HardStop(w.gen))
            elif w.state != STOPPING:
                actions.extend(self._soft_stop(w))
        if not self.alive():
            actions.append(Exit(0))
        return actions

    def tick(self) -> list[Action]:
        """The clock reached (or passed) `next_deadline()`."""
        now = now_ms(self._clock)
        actions: list[Action] = []
        for w in sorted(self.alive(), key=lambda x: x.gen):
            if w.deadline is None or w.deadline > now:
                continue
            w.deadline = None
            if w.state == STARTING:
                actions.append(Log("alert", f"New worker #{w.gen} did not become ready in time: killing it"))
            else:
                actions.append(
                    Log("warning", f"Worker #{w.gen} still draining after hard-stop-after: killing it")
                )
            actions.append(HardStop(w.gen))
        return actions

    # ------------------------------------------------------------------ internals

    def _spawn(self, config: object) -> Spawn:
        self._last_gen += 1
        gen = self._last_gen
        self.workers[gen] = Worker(gen, STARTING, deadline=now_ms(self._clock) + self.ready_timeout_ms)
        return Spawn(gen, config)

    def _soft_stop(self, w: Worker) -> list[Action]:
        """Soft-stop ``w``; a worker still starting keeps its ready deadline when there
        is no ``hard-stop-after`` (one stuck in its start must not outlive it)."""
        starting_deadline = w.deadline if w.state == STARTING else None
        w.state = STOPPING
        w.deadline = (
            now_ms(self._clock) + self.hard_stop_after_ms
            if self.hard_stop_after_ms is not None
            else starting_deadline
        )
        return [SoftStop(w.gen)]
