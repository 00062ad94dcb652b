"""Reading /proc for the CPU time of a process tree (pure parts: parsing and tree walking)."""

from __future__ import annotations

from tests.support.bench import procs

# pid 4242, command with spaces and a parenthesis; utime 300, stime 50, cutime 7, cstime 3
STAT_LINE = (
    "4242 (python3 (x) y) S 4000 4242 4242 0 -1 4194560 1234 0 0 0 300 50 7 3 20 0 2 0 "
    "123456 100000000 5000 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 0 0 0 0 0 0\n"
)


def test_parse_proc_stat_survives_spaces_and_parentheses_in_the_name():
    stat = procs.parse_proc_stat(STAT_LINE)
    assert (stat.pid, stat.ppid) == (4242, 4000)
    assert (stat.utime, stat.stime, stat.cutime, stat.cstime) == (300, 50, 7, 3)
    assert stat.own_ticks == 350
    assert stat.reaped_children_ticks == 10


def test_descendants_walks_the_whole_tree_only():
    parents = {10: 1, 11: 10, 12: 10, 13: 11, 20: 1, 21: 20}
    assert sorted(procs.descendants(10, parents)) == [10, 11, 12, 13]
    assert procs.descendants(21, parents) == [21]


def test_tree_cpu_ticks_sums_the_root_its_workers_and_their_reaped_children():
    def stat(pid, ppid, utime, stime, cutime=0, cstime=0):
        return procs.ProcStat(pid, ppid, utime, stime, cutime, cstime)

    stats = [
        stat(100, 1, 10, 5, cutime=2),  # a master that reaped an old worker
        stat(101, 100, 200, 40),  # its worker
        stat(102, 101, 1, 1),
        stat(200, 1, 999, 999),  # unrelated
    ]
    assert procs.tree_cpu_ticks(stats, 100) == 10 + 5 + 2 + 200 + 40 + 1 + 1
    assert procs.tree_cpu_ticks(stats, 555) == 0


def test_this_process_has_cpu_time():
    sum(range(200_000))
    assert procs.process_tree_cpu_seconds(__import__("os").getpid()) > 0


PROC_STAT = "cpu  200 0 50 700 5 0 10 3 0 0\ncpu0 100 0 20 300 1 0 5 2 0 0\ncpu1 100 0 30 400 4 0 5 1 0 0\nintr 1 2 3\n"


def test_parse_cpu_times_of_one_cpu():
    times = procs.parse_cpu_times(PROC_STAT, 1)
    assert (times.user, times.system, times.idle, times.steal) == (100, 30, 400, 1)
    assert times.total == 540
    assert times.running_tasks == 131
    try:
        procs.parse_cpu_times(PROC_STAT, 7)
    except ValueError as error:
        assert "cpu7" in str(error)
    else:
        raise AssertionError("a missing cpu line must be an error")


def test_share_taken_by_others_subtracts_our_own_ticks():
    before = procs.CpuTimes(user=100, nice=0, system=20, idle=300, iowait=0, irq=0, softirq=0, steal=0)
    after = procs.CpuTimes(user=170, nice=0, system=40, idle=310, iowait=0, irq=0, softirq=0, steal=0)
    # 100 ticks passed, 90 of them running tasks, 60 of those ours: others took 30%
    assert procs.share_taken_by_others(before, after, own_ticks=60) == 0.3
    assert procs.share_taken_by_others(before, after, own_ticks=95) == 0.0  # rounding never goes negative
    assert procs.share_taken_by_others(before, before, own_ticks=0) is None
