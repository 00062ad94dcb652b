"""Helpers for the stick-table tests: table specs without a config file."""

from __future__ import annotations

from minilb.config.model import StoreItem, TableSpec
from minilb.errors import SourceLocation
from minilb.stick.datatypes import key_size

HERE = SourceLocation("test.cfg", 1)


def store(text: str) -> tuple[StoreItem, ...]:
    """``"gpc0,http_req_rate(10s),gpc(3),gpc_rate(2,1s)"`` as StoreItems (periods in s or ms)."""
    items = []
    depth = 0
    word = ""
    parts = []
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(word)
            word = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        word += ch
    if word:
        parts.append(word)
    for part in parts:
        if "(" not in part:
            items.append(StoreItem(part))
            continue
        name, args = part[:-1].split("(")
        values = args.split(",")
        if name in ("gpt", "gpc"):
            items.append(StoreItem(name, count=int(values[0])))
        elif name == "gpc_rate":
            items.append(StoreItem(name, count=int(values[0]), period=_ms(values[1])))
        else:
            items.append(StoreItem(name, period=_ms(values[0])))
    return tuple(items)


def _ms(text: str) -> int:
    if text.endswith("ms"):
        return int(text[:-2])
    if text.endswith("s"):
        return int(text[:-1]) * 1000
    if text.endswith("m"):
        return int(text[:-1]) * 60000
    return int(text)


def spec(
    name: str = "t",
    key_type: str = "ip",
    size: int = 1000,
    expire: int | None = None,
    stored: str = "",
    nopurge: bool = False,
    length: int | None = None,
) -> TableSpec:
    return TableSpec(
        origin=HERE,
        name=name,
        wire_name=name,
        key_type=key_type,
        key_len=key_size(key_type, length),
        size=size,
        expire=expire,
        nopurge=nopurge,
        store=store(stored) if stored else (),
    )


def raw_state(table) -> dict:
    """Every structure of a `StickTable` as plain values (key dicts, free list, columns,
    LRU and update lists, tracking references, scalars): two tables fed the same way
    by two implementations of a hot path compare equal."""
    return {
        "shards": [dict(shard) for shard in table._shards],
        "free": list(table._free),
        "keys": list(table._keys),
        "exp": list(table._exp),
        "flags": bytes(table._flags),
        "useq": list(table._useq),
        "upd": (list(table._upd_prev), list(table._upd_next)),
        "lru": (list(table._lru_prev), list(table._lru_next)),
        "ref": list(table._ref),
        "columns": {name: [list(arr) for arr in col.arrays] for name, col in table.columns.items()},
        "scalars": (
            table._count,
            table._rows,
            table._lru_head,
            table._lru_tail,
            table._upd_head,
            table._upd_tail,
            table.update,
            table.local_update,
        ),
    }
