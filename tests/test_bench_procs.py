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
