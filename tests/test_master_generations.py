"""The master's generation state machine, on a task.Clock, with no processes."""

from twisted.internet.task import Clock

from minilb.master.generations import (
    EXITED,
    SERVING,
    STOPPING,
    Exit,
    Generations,
    HardStop,
    Log,
    SoftStop,
    Spawn,
)


def kinds(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def started(clock=None, **kw):
    clock = clock or Clock()
    g = Generations(clock, **kw)
    (spawn,) = g.start("cfg1")
    g.worker_started(spawn.gen, 101)
    g.worker_ready(spawn.gen)
    return g, clock


def test_first_worker_serves_once_ready():
    g = Generations(Clock())
    assert g.start("cfg1") == [Spawn(1, "cfg1")]
    assert g.current is None
    g.worker_started(1, 101)
    g.worker_ready(1)
    assert g.current.gen == 1 and g.current.state == SERVING


def test_broken_reload_keeps_generation_1_and_logs_every_problem():
    g, _ = started()
    actions = g.reload(None, ["parsing [a.cfg:3] : bad", "parsing [a.cfg:9] : worse"])
    assert not kinds(actions, Spawn) and not kinds(actions, SoftStop)
    messages = [a.message for a in kinds(actions, Log)]
    assert messages[:2] == ["parsing [a.cfg:3] : bad", "parsing [a.cfg:9] : worse"]
    assert g.current.gen == 1 and list(g.workers) == [1]


def test_ready_new_worker_soft_stops_the_old_one():
    g, _ = started()
    (spawn,) = kinds(g.reload("cfg2"), Spawn)
    assert spawn == Spawn(2, "cfg2")
    # the old worker serves until the new one is ready
    assert g.current.gen == 1 and g.workers[1].state == SERVING
    g.worker_started(2, 102)
    actions = g.worker_ready(2)
    assert kinds(actions, SoftStop) == [SoftStop(1)]
    assert g.current.gen == 2 and g.workers[1].state == STOPPING
    assert kinds(g.worker_exited(1, 0), Log)
    assert g.workers[1].state == EXITED and [w.gen for w in g.alive()] == [2]


def test_hard_stop_after_kills_an_old_worker_that_does_not_drain():
    g, clock = started(hard_stop_after_ms=2500)
    g.reload("cfg2")
    g.worker_started(2, 102)
    g.worker_ready(2)
    assert g.next_deadline() == 2500
    clock.advance(2.4)
    assert g.tick() == []
    clock.advance(0.1)
    assert kinds(g.tick(), HardStop) == [HardStop(1)]
    assert g.next_deadline() is None


def test_without_hard_stop_after_a_draining_worker_has_no_deadline():
    g, clock = started()
    g.reload("cfg2")
    g.worker_ready(2)
    assert g.next_deadline() is None
    clock.advance(3600)
    assert g.tick() == []


def test_new_worker_dying_before_ready_leaves_the_old_one_serving():
    g, _ = started()
    g.reload("cfg2")
    g.worker_started(2, 102)
    actions = g.worker_exited(2, 1)
    assert not kinds(actions, Exit) and not kinds(actions, HardStop)
    assert g.current.gen == 1


def test_new_worker_never_ready_is_killed_at_the_ready_timeout():
    g, clock = started(ready_timeout_ms=5000)
    g.reload("cfg2")
    clock.advance(5)
    assert kinds(g.tick(), HardStop) == [HardStop(2)]
    g.worker_exited(2, -9)
    assert g.current.gen == 1


def test_current_worker_dying_makes_the_master_exit_with_an_error():
    g, _ = started()
    actions = g.worker_exited(1, 3)
    assert kinds(actions, Exit) == [Exit(3)]


def test_current_worker_dying_while_an_old_one_drains_kills_it_then_exits():
    g, _ = started()
    g.reload("cfg2")
    g.worker_ready(2)
    actions = g.worker_exited(2, -11)
    assert kinds(actions, HardStop) == [HardStop(1)] and not kinds(actions, Exit)
    assert kinds(g.worker_exited(1, -9), Exit) == [Exit(-11)]


def test_fast_stop_kills_everything_then_exits_zero():
    g, _ = started()
    g.reload("cfg2")
    g.worker_ready(2)
    actions = g.stop(fast=True)
    assert kinds(actions, HardStop) == [HardStop(1), HardStop(2)]
    g.worker_exited(1, 0)
    assert kinds(g.worker_exited(2, 0), Exit) == [Exit(0)]


def test_graceful_stop_soft_stops_the_serving_worker():
    g, _ = started()
    assert kinds(g.stop(fast=False), SoftStop) == [SoftStop(1)]
    assert kinds(g.worker_exited(1, 0), Exit) == [Exit(0)]


def test_reload_during_reload_supersedes_the_starting_worker_at_once():
    g, clock = started(hard_stop_after_ms=2000)
    g.reload("cfg2")
    g.worker_started(2, 102)
    actions = g.reload("cfg3")  # generation 2 is not ready yet
    assert kinds(actions, SoftStop) == [SoftStop(2)] and kinds(actions, Spawn) == [Spawn(3, "cfg3")]
    assert g.workers[2].state == STOPPING and g.current.gen == 1  # 1 serves on
    assert g.worker_ready(2) == []  # a late ready of the superseded one changes nothing
    assert g.current.gen == 1
    g.worker_started(3, 103)
    assert kinds(g.worker_ready(3), SoftStop) == [SoftStop(1)]
    assert g.current.gen == 3
    clock.advance(2)  # hard-stop-after, counted from each soft stop
    assert kinds(g.tick(), HardStop) == [HardStop(1), HardStop(2)]
    g.worker_exited(2, 0)
    g.worker_exited(1, 0)
    assert [w.gen for w in g.alive()] == [3] and g.next_deadline() is None


def test_superseded_starting_worker_keeps_its_ready_deadline_without_hard_stop_after():
    g, clock = started(ready_timeout_ms=5000)
    g.reload("cfg2")
    clock.advance(1)
    g.reload("cfg3")
    assert g.workers[2].state == STOPPING and g.workers[2].deadline == 5000
    g.worker_ready(3)
    assert g.workers[1].deadline is None  # a serving worker drains as long as it takes
    clock.advance(4)
    assert kinds(g.tick(), HardStop) == [HardStop(2)]  # stuck in its start: killed
    assert not kinds(g.worker_exited(2, -9), Exit)
    assert g.current.gen == 3


def test_two_reloads_where_the_superseded_worker_dies_leave_the_serving_one():
    g, _ = started()
    g.reload("cfg2")
    g.reload("cfg3")
    assert not kinds(g.worker_exited(2, 1), Exit)  # it was stopping anyway
    assert not kinds(g.worker_exited(3, 1), Exit)  # the newest failed its start
    assert g.current.gen == 1 and [w.gen for w in g.alive()] == [1]
