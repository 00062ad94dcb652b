"""Benchmark of the peers replication core (no sockets): a full resync and steady pushes.

Two `PeersSync` with real `StickTable`s (``type ip``, ``http_req_rate(10s),gpc0``, the
issue's benchmark table) are joined in memory.  Reported: the full resync of N entries
(teacher encoding, learner decoding + applying), steady replication in updates/s, and
the longest single call on each side (what would stall a reactor).

    python scripts/bench_peers.py [--entries 1000000] [--steady 200000]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import task  # noqa: E402

from minilb.config.model import StoreItem, TableSpec  # noqa: E402
from minilb.errors import BUILTIN  # noqa: E402
from minilb.peers.protocol import RECEIVE_SLICE  # noqa: E402
from minilb.peers.sync import PeersSync  # noqa: E402
from minilb.stick.table import StickTable  # noqa: E402

SPEC = TableSpec(
    BUILTIN,
    "bench",
    "bench",
    "ip",
    4,
    4_000_000,
    expire=600_000,
    peers="p",
    store=(StoreItem("http_req_rate", period=10000), StoreItem("gpc0")),
)


def pair(clock: task.Clock) -> tuple[PeersSync, PeersSync, object, object]:
    a = PeersSync("A", ("A", "B"), [StickTable(SPEC, clock)], clock, random.Random(1), 1)
    b = PeersSync("B", ("A", "B"), [StickTable(SPEC, clock)], clock, random.Random(2), 2)
    for sync in (a, b):
        sync.local_done = sync.remote_done = True
        sync.resync_deadline_ms = None
    la = a.incoming()
    lb = b.connection_made("A")
    a.data_received(la, lb.data_to_send())
    b.data_received(lb, la.data_to_send())
    return a, b, la, lb


def fill(table: StickTable, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        row = table.get_or_create(0x0A000000 + i)
        table.add(row, "http_req_rate")
        table.set(row, "gpc0", i)
        table.touch_local(row)


def run(a: PeersSync, b: PeersSync, la, lb) -> tuple[float, float, float, float, int]:
    """Move data until quiet: (teacher CPU s, learner CPU s, longest teacher call, longest
    learner call (wall), bytes).  Totals are CPU time (``time.process_time``), which a
    busy machine inflates less than wall time; the longest calls are wall time (what a
    reactor would stall).  The learner is fed what the teacher wrote in slices of
    `RECEIVE_SLICE` bytes, one call each, as `PeerProtocol` feeds a big read; the
    teacher's calls are its timer (`tick`) and its handling of what comes back."""
    t_send = t_recv = worst_send = worst_recv = 0.0
    total = 0
    cpu = time.process_time
    wall = time.perf_counter

    def timed(call, *args):
        c0, t0 = cpu(), wall()
        call(*args)
        return cpu() - c0, wall() - t0

    while True:
        spent, took = timed(a.tick)
        t_send += spent
        worst_send = max(worst_send, took)
        data = la.data_to_send()
        if not data:
            return t_send, t_recv, worst_send, worst_recv, total
        total += len(data)
        for start in range(0, len(data), RECEIVE_SLICE):
            spent, took = timed(b.data_received, lb, data[start : start + RECEIVE_SLICE])
            t_recv += spent
            worst_recv = max(worst_recv, took)
        spent, took = timed(a.data_received, la, lb.data_to_send())
        t_send += spent
        worst_send = max(worst_send, took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--steady", type=int, default=200_000, help="updates pushed in the steady test")
    args = parser.parse_args()
    clock = task.Clock()
    clock.advance(1000)

    a, b, la, lb = pair(clock)
    began = time.perf_counter()
    fill(a.tables[0].table, args.entries)
    print(f"filled {args.entries} entries in {time.perf_counter() - began:.1f} s", flush=True)
    # B asks A for a full resync (what a restarted peer does)
    a.data_received(la, b"\x00\x00")
    send, recv, worst_send, worst_recv, size = run(a, b, la, lb)
    assert len(b.tables[0].table) == args.entries
    print(
        f"full resync of {args.entries} entries (CPU): {send + recv:.2f} s "
        f"(teacher {send:.2f} s, learner {recv:.2f} s, {size / 1e6:.1f} MB, "
        f"{args.entries / (send + recv):,.0f} entries/s); "
        f"longest call: teacher {worst_send * 1000:.1f} ms, learner {worst_recv * 1000:.1f} ms",
        flush=True,
    )

    # free the resync's tables now, not in a garbage collection during the steady test
    del a, b, la, lb
    gc.collect()
    a, b, la, lb = pair(clock)
    fill(a.tables[0].table, args.steady)
    send, recv, worst_send, worst_recv, size = run(a, b, la, lb)
    print(
        f"steady push of {args.steady} updates (CPU): {args.steady / (send + recv):,.0f} updates/s "
        f"(sender {send:.2f} s, receiver {recv:.2f} s) "
        f"(longest call: sender {worst_send * 1000:.1f} ms, receiver {worst_recv * 1000:.1f} ms)"
    )


if __name__ == "__main__":
    main()
