"""One expiry timer for all tables, bounded work per run, on a task.Clock."""

import pytest
from twisted.internet.task import Clock

from minilb.stick.expiry import TableExpiry
from minilb.stick.table import StickTable
from tests.support.stick import spec

#: every test on both implementations of the hot paths (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("stick_impl")


def test_entries_expire_on_time_in_bounded_steps():
    clock = Clock()
    clock.advance(100)
    a = StickTable(spec("a", expire=10_000, size=100), clock)
    b = StickTable(spec("b", expire=3_000, size=100), clock)
    never = StickTable(spec("c", size=100), clock)  # no expire: not scheduled
    expiry = TableExpiry([a, b, never], clock, step=4, max_wait=1.0)
    assert expiry.tables == [a, b]
    steps = []
    real_step = b.expire_step
    b.expire_step = lambda n: steps.append(real_step(n)) or steps[-1]
    expiry.start()
    for k in range(10):
        a.touch_local(a.get_or_create(k))
        b.touch_local(b.get_or_create(k))
    clock.pump([1.0, 1.0, 0.999])
    assert b.used == 10
    clock.advance(0.001)  # b's entries are due: removed 4 at a time, runs chained at once
    assert b.used == 0 and a.used == 10
    assert [n for n in steps if n] == [4, 4, 2]
    clock.pump([1.0] * 6 + [0.999])
    assert a.used == 10
    clock.advance(0.001)
    assert a.used == 0
    assert expiry.removed == 20
    assert len(clock.getDelayedCalls()) == 1  # one timer, always armed
    expiry.stop()
    assert clock.getDelayedCalls() == []


def test_tracked_entries_stay_until_released():
    clock = Clock()
    table = StickTable(spec("a", expire=1000), clock)
    expiry = TableExpiry([table], clock)
    expiry.start()
    row = table.get_or_create(1)
    table.ref(row)
    clock.pump([0.5] * 10)
    assert table.used == 1
    table.release(row)
    clock.pump([0.5] * 3)
    assert table.used == 0
