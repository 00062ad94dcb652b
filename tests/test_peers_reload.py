"""Hand-over of the tables from an old to a new process over real TCP on 127.0.0.1
(the reload path of issue 6), with a peers section that holds only the local peer."""

from __future__ import annotations

import random

import attrs
import pytest_twisted
from twisted.internet import reactor, task

from minilb.config.model import Address, Bind, Peer, PeersSection, StoreItem
from minilb.errors import BUILTIN
from minilb.peers.service import PeersService
from minilb.stick.table import StickTable
from tests.support.peers import ST_IP_SPEC
from tests.support.procs import free_port

SPEC = attrs.evolve(ST_IP_SPEC, store=(StoreItem("gpc0"), StoreItem("http_req_rate", period=10000)))


@pytest_twisted.inlineCallbacks
def test_old_process_hands_its_tables_to_the_new_one_early_after_start():
    port = free_port()
    address = Address("ipv4", "127.0.0.1", port)
    section = PeersSection(
        BUILTIN,
        "mypeers",
        peers=(Peer(BUILTIN, "lb1", address),),
        bind=Bind(BUILTIN, address, name="lb1"),
        local_peer="lb1",
    )
    old_table = StickTable(SPEC, reactor)
    old = PeersService(reactor, section, "lb1", [old_table], rng=random.Random(1), pid=100)
    old.startService()
    for i in range(500):
        row = old_table.get_or_create(0x0A000000 + i)
        old_table.set(row, "gpc0", i)
        old_table.add(row, "http_req_rate")
        old_table.touch_local(row)
    assert not old.sync.synced  # 1 s after start: HAProxy 2.6 would hand nothing over
    new_table = StickTable(SPEC, reactor)
    new = PeersService(
        reactor, section, "lb1", [new_table], rng=random.Random(2), pid=101, has_old_process=True
    )
    new.startService()  # SO_REUSEPORT: both listen until the old one stops
    try:
        ok = yield old.begin_handover()
        assert ok is True
        assert len(new_table) == 500
        row = new_table.lookup(0x0A000000 + 499)
        assert new_table.get(row, "gpc0") == 499 and new_table.get(row, "http_req_rate") == 1
        assert 59000 < new_table.expire_in(row) <= 60000
        # the old process only said PARTIAL: the new one goes on (no remote peer: done after 5 s)
        assert new.sync.local_done
        assert new_table.local_update == 0  # handed-over entries are not local changes
    finally:
        yield old.stopService()
        yield new.stopService()
        yield task.deferLater(reactor, 0, lambda: None)
