"""Stick-table benchmark: memory per entry, track-plus-rate-check cost, longest
expiry and purge steps, at 1,000,000 IPv4 entries storing
``http_req_rate(10s),gpc0,http_req_cnt`` (issue 3's figures).

    python scripts/bench_stick.py [--entries 1000000] [--requests 200000]

Prints a small table; run it once as it is and once with ``MINILB_PURE=1`` (the
first line says whether the compiled hot paths were used).  RSS is read from /proc/self/statm: "per entry" is the growth
while the table fills, divided by the number of entries (the interpreter's own
baseline is reported apart).  Per-request figures are CPU time of this process
(``time.process_time``), the median over rounds of 10,000 requests (one per client),
so that other processes on the cores and a slow round do not count; the longest
steps are wall and CPU time on a manual clock.

On a busy machine, count instructions instead: ``--instructions`` runs the requests
loop under callgrind twice (2 and 7 rounds of 2,000 clients) and prints the
instructions of one track + rate check, the difference of the two runs divided by
the 10,000 requests between them.  By hand, ``--loop ROUNDS`` runs only that loop,
its track + rate check part through ``map`` so that callgrind can collect just that
part, on a clock that stands still (under callgrind a request takes longer than a
millisecond, and the tick cache would be recomputed on every call)::

    PY=$(python -c 'import sys; print(sys.executable)')
    for n in 2 7; do valgrind --tool=callgrind --toggle-collect=map_next \
        --callgrind-out-file=cg.$n $PY scripts/bench_stick.py --loop $n; done
    # (total of cg.7 - total of cg.2) / (5 * 2000) = instructions a request
    callgrind_annotate cg.7 | grep TOTALS; callgrind_annotate cg.2 | grep TOTALS
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import time
from statistics import median

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minilb.config.model import StoreItem, TableSpec  # noqa: E402
from minilb.errors import SourceLocation  # noqa: E402
from minilb.rules import samples as S  # noqa: E402
from minilb.rules.txn import Session  # noqa: E402
from minilb.stick import fetches, tracking  # noqa: E402
from minilb.stick import table as table_module  # noqa: E402
from minilb.stick.table import StickTable  # noqa: E402
from minilb.timebase import ManualClock  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def make_table(size: int, clock: ManualClock, expire: int = 60_000) -> StickTable:
    spec = TableSpec(
        origin=SourceLocation("bench", 1),
        name="rl",
        wire_name="rl",
        key_type="ip",
        key_len=4,
        size=size,
        expire=expire,
        store=(StoreItem("http_req_rate", period=10_000), StoreItem("gpc0"), StoreItem("http_req_cnt")),
    )
    return StickTable(spec, clock)


def fill(table: StickTable, entries: int) -> None:
    """Every entry tracked once by an HTTP request and released, as real traffic would."""
    base = 0x0A000000
    track, release = table.track_key, table.release
    for i in range(entries):
        row = track(base + i, True)
        release(row, conn_cur=True)


def bench_memory(entries: int) -> tuple[float, float, float]:
    gc.collect()
    before = rss()
    clock = ManualClock(1_000.0)
    table = make_table(entries, clock)
    started = time.perf_counter()
    fill(table, entries)
    elapsed = time.perf_counter() - started
    gc.collect()
    after = rss()
    assert table.used == entries
    per_entry = (after - before) / entries
    return per_entry, after / entries, elapsed / entries * 1e6


class WallClock:
    """What the reactor gives in production: ``seconds`` is ``time.time``, a builtin."""

    seconds = staticmethod(time.time)


class WorkerCollector:
    """The cycle collector as a worker runs it (`minilb.tcp.reactor.tune_collector`):
    the young threshold raised, and what was built before the loop (here: the table
    and the sessions) collected once and frozen; restored on exit."""

    def __enter__(self):
        from minilb.tcp.reactor import YOUNG_THRESHOLD

        self.saved = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, *self.saved[1:])
        gc.collect()
        gc.freeze()
        return self

    def __exit__(self, *exc):
        gc.unfreeze()
        gc.set_threshold(*self.saved)


def bench_requests(requests: int, clients: int = 10_000) -> tuple[float, float]:
    """(us for track + sc0_http_req_rate check, us for the release at the request's end).

    CPU time of this process (``time.process_time``), so other processes competing
    for the cores do not count; each round tracks ``clients`` sessions, checks their
    rate, then releases them all in a second timed loop; the figures are the medians
    over the rounds.  The clients' entries exist (an untimed first round creates
    them, as each client's first request would: that cost is the "fill" line) and
    the collector runs as in a worker."""
    clock = WallClock()
    table = make_table(1_000_000, clock)
    sessions = make_sessions(clients)
    rate_fetch = S.FETCHES["sc0_http_req_rate"].fn
    key_of = table.key_from_sample
    track = tracking.track
    end = tracking.on_session_end
    http = tracking.PHASE_HTTP
    for sess in sessions:  # each client's first request: its entry is created
        track(sess, 0, table, key_of(sess.src), http)
        end(sess)
    with WorkerCollector():
        return _time_requests(requests, sessions, table, rate_fetch, key_of, track, end, http)


def make_sessions(clients: int) -> list[Session]:
    return [Session(src=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(clients)]


def _time_requests(requests, sessions, table, rate_fetch, key_of, track, end, http) -> tuple[float, float]:
    clients = len(sessions)
    cpu = time.process_time
    over_limit = 0
    track_check: list[float] = []
    release: list[float] = []
    for _ in range(max(1, requests // clients)):
        t0 = cpu()
        for sess in sessions:
            track(sess, 0, table, key_of(sess.src), http)
            if rate_fetch(sess, None) > 100:
                over_limit += 1
        t1 = cpu()
        for sess in sessions:
            end(sess)
        t2 = cpu()
        track_check.append(t1 - t0)
        release.append(t2 - t1)
    return median(track_check) / clients * 1e6, median(release) / clients * 1e6


def bench_action(requests: int, clients: int = 10_000) -> float:
    """CPU us for what a request's rules spend on the stick table, through the same
    functions as in a worker: the ``track-sc0 src`` action as the rules compile it
    (the src fetch included) then the ``sc0_http_req_rate`` fetch (the median over
    rounds, as `bench_requests`; the release is not timed)."""
    table = make_table(1_000_000, WallClock())
    action = compile_track_sc0_src(table)
    sessions = make_sessions(clients)
    rate_fetch = S.FETCHES["sc0_http_req_rate"].fn
    end = tracking.on_session_end
    for sess in sessions:
        action(sess, None)
        end(sess)
    cpu = time.process_time
    rounds: list[float] = []
    with WorkerCollector():
        for _ in range(max(1, requests // clients)):
            t0 = cpu()
            for sess in sessions:
                action(sess, None)
                if rate_fetch(sess, None) > 100:
                    pass
            rounds.append(cpu() - t0)
            for sess in sessions:
                end(sess)
    return median(rounds) / clients * 1e6


def compile_track_sc0_src(table: StickTable):
    """The ``http-request track-sc0 src table rl`` action, as the rules build it."""
    from minilb.rules import actions as A
    from minilb.rules.context import CompileContext

    ctx = CompileContext(None, {table.name: table})
    ctx.ruleset = A.HTTP_REQUEST
    spec = A.ActionSpec(A.HTTP_REQUEST, "track-sc0", "track-sc0", None, ["src", "table", table.name])
    action, _ = A.ACTIONS[A.HTTP_REQUEST]["track-sc0"].parser(spec, ctx)
    return action


def requests_loop(rounds: int, clients: int = 2_000) -> int:
    """`bench_requests`'s loop without timing, the track + rate check part run by
    ``map`` on a clock that stands still (see the module docstring); returns how
    many were over the limit."""
    from collections import deque

    table = make_table(1_000_000, FrozenClock())
    sessions = make_sessions(clients)
    rate_fetch = S.FETCHES["sc0_http_req_rate"].fn
    key_of = table.key_from_sample
    track = tracking.track
    http = tracking.PHASE_HTTP
    over = []

    def request(sess: Session) -> None:
        track(sess, 0, table, key_of(sess.src), http)
        if rate_fetch(sess, None) > 100:
            over.append(sess)

    for _ in range(rounds):
        deque(map(request, sessions), maxlen=0)
        for sess in sessions:
            tracking.on_session_end(sess)
    return len(over)


class FrozenClock:
    """A clock that stands still, read through a builtin as `WallClock`'s."""

    seconds = staticmethod(itertools.repeat(1_700_000_000.123).__next__)


def count_instructions() -> float | None:
    """Instructions per track + rate check, from two callgrind runs of `requests_loop`
    (None when valgrind is missing)."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("valgrind") is None:
        return None
    totals = []
    with tempfile.TemporaryDirectory() as tmp:
        for rounds in (2, 7):
            out = os.path.join(tmp, f"cg.{rounds}")
            subprocess.run(
                [
                    "valgrind",
                    "--tool=callgrind",
                    "--toggle-collect=map_next",
                    f"--callgrind-out-file={out}",
                    sys.executable,
                    os.path.abspath(__file__),
                    "--loop",
                    str(rounds),
                ],
                check=True,
                capture_output=True,
            )
            with open(out) as f:
                totals.append(
                    next(int(line.split()[1]) for line in f if line.startswith(("summary:", "totals:")))
                )
    return (totals[1] - totals[0]) / (5 * 2_000)


RULES_CONFIG = """\
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:8080
    stick-table type ip size 1m expire 60s store http_req_rate(10s),gpc0,http_req_cnt
    http-request track-sc0 src
    http-request deny deny_status 429 if { sc0_http_req_rate gt 100 }
"""


def bench_rules(requests: int, clients: int = 10_000) -> float:
    """CPU us per request through the compiled rules (``track-sc0 src`` then the rate
    ACL, as the HTTP frontend runs them) plus the end-of-request release."""
    import tempfile

    from minilb.config.load import load_config
    from minilb.rules.compile import compile_rules
    from minilb.rules.txn import Txn

    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        f.write(RULES_CONFIG)
    try:
        config, _ = load_config([f.name])
    finally:
        os.unlink(f.name)
    clock = WallClock()
    tables = {spec.name: StickTable(spec, clock) for spec in config.tables()}
    rules = compile_rules(config, tables)["fe"]
    sessions = [Session(src=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(clients)]
    txns = [Txn(sess, "GET", b"/", "/", None, "1.1", []) for sess in sessions]
    run = rules.http_request
    end = tracking.on_txn_end
    cpu = time.process_time
    done = 0
    t0 = cpu()
    while done < requests:
        for txn in txns:
            run(txn)
            end(txn)
        done += clients
    return (cpu() - t0) / done * 1e6


def bench_steps(entries: int, step: int) -> tuple[float, float, int, float, float, int]:
    """Longest expire_step (wall ms, CPU ms), its step, longest purge-on-insert (wall ms,
    CPU ms) and the purge batch."""
    clock = ManualClock(1_000.0)
    table = make_table(entries, clock, expire=60_000)
    fill(table, entries)
    clock.advance(61)
    longest = longest_cpu = 0.0
    while True:
        t0 = time.perf_counter()
        c0 = time.process_time()
        done = table.expire_step(step)
        longest_cpu = max(longest_cpu, time.process_time() - c0)
        longest = max(longest, time.perf_counter() - t0)
        if done == 0:
            break
    assert table.used == 0
    # purge: a full table receiving new keys frees (size >> 8) + 1 of the oldest
    fill(table, entries)
    longest_purge = longest_purge_cpu = 0.0
    for i in range(20):
        t0 = time.perf_counter()
        c0 = time.process_time()
        table.get_or_create(0x0B000000 + i)
        longest_purge_cpu = max(longest_purge_cpu, time.process_time() - c0)
        longest_purge = max(longest_purge, time.perf_counter() - t0)
    return (
        longest * 1000,
        longest_cpu * 1000,
        step,
        longest_purge * 1000,
        longest_purge_cpu * 1000,
        (entries >> 8) + 1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--step", type=int, default=2_000, help="expire_step(max_entries) to time")
    parser.add_argument("--loop", type=int, default=0, help="only run the requests loop ROUNDS times")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions per track + rate check (callgrind)",
    )
    args = parser.parse_args()
    assert fetches  # registered
    if args.loop:
        requests_loop(args.loop)
        return

    per_entry, total_per_entry, fill_us = bench_memory(args.entries)
    gc.collect()
    check_us, release_us = bench_requests(args.requests)
    gc.collect()
    action_us = bench_action(args.requests)
    gc.collect()
    instructions = count_instructions() if args.instructions else None
    rules_us = bench_rules(args.requests)
    gc.collect()
    step_ms, step_cpu, step_n, purge_ms, purge_cpu, batch = bench_steps(args.entries, args.step)

    rows = [
        ("entries", f"{args.entries:,}", ""),
        ("RSS growth per entry", f"{per_entry:.0f} B", "target <= 200 B"),
        ("RSS total / entries", f"{total_per_entry:.0f} B", "incl. interpreter"),
        ("fill (track+release) per entry", f"{fill_us:.2f} us", ""),
        ("track + rate check per request (CPU)", f"{check_us:.2f} us", "target <= 2 us"),
        *(
            [("track + rate check per request (instructions)", f"{instructions:,.0f}", "callgrind")]
            if instructions is not None
            else []
        ),
        ("track-sc0 src action + rate fetch (CPU)", f"{action_us:.2f} us", "as the rules run them"),
        ("release at the request's end (CPU)", f"{release_us:.2f} us", ""),
        ("compiled rules: track-sc0 src + rate ACL + release", f"{rules_us:.2f} us", "incl. the src fetch"),
        (
            f"longest expire_step({step_n}), wall / CPU",
            f"{step_ms:.1f} / {step_cpu:.1f} ms",
            "target <= 50 ms",
        ),
        (
            f"longest purge on insert (batch {batch}), wall / CPU",
            f"{purge_ms:.1f} / {purge_cpu:.1f} ms",
            "target <= 50 ms",
        ),
    ]
    t0 = time.process_time()
    for _ in range(1_000_000):
        pass
    empty_loop_ns = (time.process_time() - t0) * 1000
    width = max(len(r[0]) for r in rows)
    print(
        f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}, "
        f"empty loop {empty_loop_ns:.0f} ns/iteration (a quiet desktop: ~12), "
        f"hot paths: {'compiled (minilb_speedups.stick)' if table_module._speedups else 'pure Python'}"
    )
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
