"""The reload hand-over's peers path alone: an old and a new `PeersService` in ONE
process, over a real loopback TCP connection and the worker's reactor (no process
start-up, no master).  Reports wall and CPU time of handing ``--entries`` entries
over (the bench_reload table: http_req_rate, gpc0, http_req_cnt, conn_cnt), and the
CPU share a busy loop gets just before: a utilisation at or above it means the
transfer is CPU-bound (no pacing stall in the adapters); below it, something waits.

    python scripts/bench_handover.py [--entries 200000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minilb.tcp.reactor import install_if_unset  # noqa: E402

install_if_unset()

from twisted.internet import defer, reactor  # noqa: E402

from minilb.config.model import Address, Bind, Peer, PeersSection, StoreItem, TableSpec  # noqa: E402
from minilb.errors import BUILTIN  # noqa: E402
from minilb.peers.service import PeersService  # noqa: E402
from minilb.stick.table import StickTable  # noqa: E402
from tests.support.procs import free_port  # noqa: E402

STORE = (
    StoreItem("http_req_rate", period=3_600_000),
    StoreItem("gpc0"),
    StoreItem("http_req_cnt"),
    StoreItem("conn_cnt"),
)


def busy_share(seconds: float = 1.0) -> float:
    """CPU time / wall time of a busy loop: this process's share of the machine now."""
    c, w = time.process_time(), time.perf_counter()
    while time.perf_counter() - w < seconds:
        pass
    return (time.process_time() - c) / (time.perf_counter() - w)


@defer.inlineCallbacks
def run(entries: int):
    spec = TableSpec(
        BUILTIN,
        "mypeers/t",
        "t",
        "ip",
        4,
        max(2 * entries, 1000),
        expire=1_800_000,
        peers="mypeers",
        store=STORE,
    )
    address = Address("ipv4", "127.0.0.1", free_port())
    section = PeersSection(
        BUILTIN, "mypeers", peers=(Peer(BUILTIN, "me", address),), bind=Bind(BUILTIN, address, name="me")
    )
    old_table = StickTable(spec, reactor)
    for i in range(entries):
        row = old_table.get_or_create(0x0A000000 + i)
        old_table.set(row, "gpc0", i)
        old_table.add(row, "http_req_rate")
        old_table.touch_local(row)
    old = PeersService(reactor, section, "me", [old_table], rng=random.Random(1), pid=100)
    old.startService()
    yield old.port.stopListening()  # the new one alone listens, as after a soft stop
    old.port = None
    new_table = StickTable(spec, reactor)
    new = PeersService(
        reactor, section, "me", [new_table], rng=random.Random(2), pid=101, has_old_process=True
    )
    new.startService()
    try:
        share = busy_share()
        c, w = time.process_time(), time.perf_counter()
        ok = yield old.begin_handover()
        cpu, wall = time.process_time() - c, time.perf_counter() - w
        print(
            f"{entries} entries handed over ({'confirmed' if ok else 'NOT confirmed'}, "
            f"{len(new_table)} learned): wall {wall:.2f} s, CPU {cpu:.2f} s "
            f"({cpu / entries * 1e6:.2f} us/entry teacher + learner); utilisation {cpu / wall:.0%} "
            f"(a busy loop got {share:.0%} just before)"
        )
    finally:
        yield old.stopService()
        yield new.stopService()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=200_000)
    args = ap.parse_args()
    d = run(args.entries)
    d.addErrback(lambda f: print(f.getTraceback(), file=sys.stderr))
    d.addBoth(lambda _: reactor.stop())
    reactor.run()


if __name__ == "__main__":
    main()
