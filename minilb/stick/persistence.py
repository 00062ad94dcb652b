"""Owns server persistence through stick tables: the ``stick on``, ``stick match``
and ``stick store-request`` rules of a backend (registered into the rules compiler
at import) and the two calls the data path makes around server selection.

HAProxy 2.6 semantics (``process_sticking_rules`` / ``process_store_rules``):

- before choosing a server, the ``match`` rules (``stick match`` and ``stick on``)
  run in file order; the first whose key is in its table with a server stored
  gives the server (`lookup`), and the hit refreshes the entry's expiry;
- the ``store`` rules (``stick store-request`` and ``stick on``) take their key at
  request time (up to 8 per request, `pending_stores`) and write the chosen
  server's id and key (its name, or ``addr:port`` with ``srvkey addr``) once a
  server is selected (`commit`), even when persistence chose it.

The data path, with ``rules`` the backend's `ProxyRules`::

    found = persistence.lookup(rules, sess, txn)      # (server_id, server_key) or None
    # prefer the server whose name (or address) is server_key, else the one with server_id;
    # use it if it is up (or "option persist")
    stores = persistence.pending_stores(rules, sess, txn)
    ...  # server chosen
    persistence.commit(stores, server.id, server.name, f"{server.host}:{server.port}")
"""

from __future__ import annotations

import itertools
from typing import Any

from minilb.rules import samples as S
from minilb.rules.compile import register_rule_keyword
from minilb.stick.fetches import sample_key, stick_lookup, stick_store

MAX_STORES = 8  # HAProxy keeps at most 8 pending stores per stream

_order = itertools.count()


class StickRule:
    """One compiled ``stick`` line: what it does, its pattern, its table, its condition."""

    __slots__ = ("keyword", "expr", "table", "pred", "order")

    def __init__(self, keyword: str, expr: Any, table: Any, pred: Any):
        self.keyword = keyword
        self.expr = expr
        self.table = table
        self.pred = pred
        self.order = next(_order)

    @property
    def matches(self) -> bool:
        return self.keyword in ("stick match", "stick on")

    @property
    def stores(self) -> bool:
        return self.keyword in ("stick store-request", "stick on")

    def applies(self, sess: Any, txn: Any) -> bool:
        return self.pred is None or self.pred(sess, txn)

    def key(self, sess: Any, txn: Any) -> Any:
        return sample_key(self.table, self.expr.eval(sess, txn))


def _compiler(keyword: str):
    def compile_stick(words: list[str], cond: Any, ctx: Any) -> StickRule:
        if not words:
            raise S.SampleError("missing fetch method")
        expr = ctx.parse_expr(words[0])
        rest = words[1:]
        if rest[:1] == ["table"]:
            if len(rest) < 2:
                raise S.SampleError("missing table name")
            table = ctx.table(rest[1])
            rest = rest[2:]
        else:
            table = ctx.own_table
            if table is None:
                raise S.SampleError(f"unable to find table '{getattr(ctx.proxy, 'name', '')}'")
        if rest:
            raise S.SampleError(f"unexpected argument '{rest[0]}'")
        pred = getattr(cond, "pred", cond)
        return StickRule(keyword, expr, table, pred)

    return compile_stick


def _rules(rules: Any) -> list[StickRule]:
    extra = getattr(rules, "extra", None) or {}
    found = [r for kw in ("stick on", "stick match", "stick store-request") for r in extra.get(kw, ())]
    found.sort(key=lambda r: r.order)
    return found


def lookup(rules: Any, sess: Any, txn: Any) -> tuple[int | None, str | None] | None:
    """(server_id, server_key) from the first ``match`` rule that knows the request's
    key, or None."""
    for rule in _rules(rules):
        if not rule.matches or not rule.applies(sess, txn):
            continue
        key = rule.key(sess, txn)
        if key is None:
            continue
        found = stick_lookup(rule.table, key)
        if found is not None:
            return found
    return None


def pending_stores(rules: Any, sess: Any, txn: Any) -> list[tuple[Any, Any]]:
    """The (table, key) pairs the ``store`` rules will write once a server is chosen."""
    out: list[tuple[Any, Any]] = []
    for rule in _rules(rules):
        if len(out) >= MAX_STORES:
            break
        if not rule.stores or not rule.applies(sess, txn):
            continue
        key = rule.key(sess, txn)
        if key is not None and (rule.table, key) not in out:
            out.append((rule.table, key))
    return out


def commit(stores: list[tuple[Any, Any]], server_id: int, server_name: str, server_addr: str = "") -> None:
    """Write the chosen server into every pending store (``srvkey`` picks name or address)."""
    for table, key in stores:
        server_key = server_addr if getattr(table.spec, "srvkey", "name") == "addr" else server_name
        stick_store(table, key, server_id, server_key)


for _kw in ("stick on", "stick match", "stick store-request"):
    register_rule_keyword(_kw, _compiler(_kw))
