"""The shortcuts the rules take on the request path give the same answers as the
general code: ``sc_<x>(N)`` evaluated by the ``scN_<x>`` fetch, one-range integer
ACLs compared without the matcher, and a Txn's path/query split from the uri only
when read or set."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

import minilb.stick.fetches  # noqa: F401  (registers the stick-table keywords)
from minilb.rules.acl import parse_acl_expr
from minilb.rules.samples import FETCHES, parse_expr
from minilb.rules.txn import Txn
from minilb.stick import tracking
from minilb.stick.table import StickTable
from tests.support.rules import session, split_words, txn
from tests.support.stick import spec


def _table(name="t"):
    clock = Clock()
    clock.advance(1000)
    return StickTable(spec(name=name, stored="http_req_rate(10s),http_req_cnt,gpc0"), clock), clock


class _Ctx:
    """What parse_expr asks of the proxy being compiled: its own table and others."""

    def __init__(self, *tables):
        self.tables = {t.name: t for t in tables}
        self.own_table = tables[0]

    def table(self, name):
        return self.tables.get(name)

    def warn(self, message):
        raise AssertionError(message)


@pytest.mark.parametrize("metric", ["http_req_rate", "http_req_cnt", "get_gpc0", "trackers", "tracked"])
@pytest.mark.parametrize("slot", [0, 1, 2])
def test_sc_with_a_constant_counter_answers_as_the_scN_fetch(metric, slot):
    table, clock = _table()
    other, _ = _table("other")
    ctx = _Ctx(table, other)
    generic = parse_expr(f"sc_{metric}({slot})", ctx)
    generic_table = parse_expr(f"sc_{metric}({slot},other)", ctx)
    direct = parse_expr(f"sc{slot}_{metric}", ctx)
    direct_table = parse_expr(f"sc{slot}_{metric}(other)", ctx)
    sess = session()
    t = txn(sess=sess)
    seen = []
    for step in range(3):
        if step == 1:  # now tracked, with a request counted
            tracking.track(sess, slot, table, table.normalize_key("10.0.0.1"))
        if step == 2:
            clock.advance(3)
        pairs = [
            (generic.eval(sess, t), direct.eval(sess, t)),
            (generic_table.eval(sess, t), direct_table.eval(sess, t)),
        ]
        for a, b in pairs:
            assert a == b
        seen.append(pairs[0][0])
    assert seen[0] in (None, False)  # nothing tracked: no value
    assert generic.fetch is FETCHES[f"sc_{metric}"]  # what the expression reports stays the keyword used
    tracking.on_session_end(sess)


def test_sc_with_a_counter_out_of_range_keeps_the_generic_answer():
    table, _ = _table()
    sess = session()
    tracking.track(sess, 0, table, table.normalize_key("10.0.0.1"))
    expr = parse_expr("sc_http_req_cnt(3)", _Ctx(table))
    assert expr.eval(sess, txn(sess=sess)) is None
    tracking.on_session_end(sess)


class _Fixed:
    """A sample fetch returning whatever the test sets (to feed the ACL every type)."""

    value = None


@pytest.fixture
def fixed_fetch():
    from minilb.rules.samples import SINT, register_fetch

    previous = FETCHES.get("test_fixed")
    register_fetch("test_fixed", lambda s, t: _Fixed.value, out=SINT)
    yield _Fixed
    if previous is None:
        del FETCHES["test_fixed"]
    else:
        FETCHES["test_fixed"] = previous


@pytest.mark.parametrize(
    "expr, value, expected",
    [
        ("gt 0", 1, True),
        ("gt 0", 0, False),
        ("gt 0", -5, False),
        ("le 3", 3, True),
        ("le 3", 4, False),
        ("gt 0", "7", True),  # a string sample is converted as before
        ("gt 0", "x", False),
        ("gt 0", True, True),  # a boolean is 1
        ("gt 0", False, False),
        ("gt 0", None, False),
        ("1:5", 5, True),
        ("1:5", 6, False),
    ],
)
def test_one_range_integer_acl(fixed_fetch, expr, value, expected):
    term = parse_acl_expr(split_words(f"test_fixed {expr}"))
    fixed_fetch.value = value
    t = txn()
    assert term.pred(t.sess, t) is expected


def test_txn_path_and_query_are_split_from_the_uri_when_first_read():
    t = Txn(session(), "GET", b"http://x.example/a/b?c=1", None, None, "1.1", [])
    assert (t.path, t.query) == ("/a/b", "c=1")
    t = Txn(session(), "GET", b"/p", None, None, "1.1", [])
    assert t.query is None and t.path == "/p"


def test_txn_setting_one_of_path_and_query_keeps_the_other_as_received():
    t = Txn(session(), "GET", b"/a?q=1", None, None, "1.1", [])
    t.path = "/b"
    assert (t.path, t.query) == ("/b", "q=1")
    t = Txn(session(), "GET", b"/a?q=1", None, None, "1.1", [])
    t.query = None
    assert (t.path, t.query) == ("/a", None)


def test_txn_given_path_and_query_are_kept():
    t = Txn(session(), "GET", b"/a?q=1", "/other", "z", "1.1", [])
    assert (t.path, t.query) == ("/other", "z")
