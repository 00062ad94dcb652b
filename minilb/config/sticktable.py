"""Owns the ``stick-table`` syntax (proxies) and the ``table`` syntax (peers sections).

`parse_table` reads ``type ip|ipv6|integer|string [len N]|binary [len N] size N[kmg]
[expire T] [nopurge] [peers NAME] [srvkey name|addr] [store TYPE[,TYPE...]]...``
into a `model.TableSpec`, validating store types against
`minilb.stick.datatypes.DATA_TYPES` (periods for rates, element counts for arrays,
exclusive pairs) with HAProxy 2.6's messages (checked with ``haproxy -c``).
Warnings (a type stored twice) go through ``warn``; errors raise `ValueError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from minilb.config.model import StoreItem, TableSpec
from minilb.errors import SourceLocation
from minilb.stick import datatypes
from minilb.units import parse_size, parse_time

_KEY_TYPES = ("ip", "ipv6", "integer", "string", "binary")
_STORE_ITEM = re.compile(r"^([a-z0-9_]+)(?:\((.*)\))?$")


def parse_table(
    words: tuple[str, ...] | list[str],
    *,
    origin: SourceLocation,
    name: str,
    wire_name: str,
    warn: Callable[[str], None],
    allow_peers: bool = True,
    peers: str | None = None,
) -> TableSpec:
    """Parse the words after ``stick-table`` (or after ``table NAME``).

    ``peers`` is the replicating section when the table is declared in one (a peers
    section's ``table`` line, where the ``peers`` word is not allowed)."""
    key_type: str | None = None
    explicit_len: int | None = None
    size: int | None = None
    expire: int | None = None
    nopurge = False
    srvkey = "name"
    store: list[StoreItem] = []
    i = 0

    def arg(what: str) -> str:
        if i + 1 >= len(words):
            raise ValueError(f"stick-table: missing argument after '{words[i]}'{what}.")
        return words[i + 1]

    while i < len(words):
        w = words[i]
        if w == "type":
            key_type = arg("")
            if key_type not in _KEY_TYPES:
                raise ValueError(f"stick-table: unknown type '{key_type}'.")
            i += 2
            if key_type in ("string", "binary") and i < len(words) and words[i] == "len":
                text = words[i + 1] if i + 1 < len(words) else ""
                if not text.isdigit() or int(text) <= 0:
                    raise ValueError(f"stick-table: invalid length '{text}' for type '{key_type}'.")
                explicit_len = int(text)
                i += 2
            continue
        if w == "size":
            text = arg("")
            try:
                size = parse_size(text)
            except ValueError:
                raise ValueError(
                    f"stick-table: unexpected character in argument of 'size' ('{text}')."
                ) from None
            i += 2
        elif w == "expire":
            text = arg("")
            try:
                expire = parse_time(text)
            except ValueError:
                bad = re.sub(r"^\d+", "", text)[:1] or text[:1]
                raise ValueError(
                    f"stick-table: unexpected character '{bad}' in argument of 'expire'."
                ) from None
            i += 2
        elif w == "nopurge":
            nopurge = True
            i += 1
        elif w == "peers" and allow_peers:
            peers = arg("")
            i += 2
        elif w == "srvkey":
            srvkey = arg("")
            if srvkey not in ("name", "addr"):
                raise ValueError(f"stick-table: unknown srvkey '{srvkey}' (expects 'name' or 'addr').")
            i += 2
        elif w == "store":
            for item_text in _split_store(arg("")):
                item = _parse_store_item(item_text)
                if any(s.name == item.name for s in store):
                    warn(f"stick-table: store option '{item.name}' already enabled, ignored.")
                    continue
                dt = datatypes.BY_NAME[item.name]
                for other in store:
                    if other.name in dt.exclusive_with:
                        generic, legacy = (item.name, other.name) if dt.is_array else (other.name, item.name)
                        raise ValueError(
                            f"stick-table: simultaneous usage of '{generic}' and "
                            f"'{_legacy_family(legacy)}' in a same table is not permitted as "
                            f"'{generic}' overrides '{_legacy_family(legacy)}'."
                        )
                store.append(item)
            i += 2
        else:
            raise ValueError(f"stick-table: unknown argument '{w}'.")
    if key_type is None:
        raise ValueError("stick-table: missing type.")
    if size is None:
        raise ValueError("stick-table: missing size.")
    return TableSpec(
        origin=origin,
        name=name,
        wire_name=wire_name,
        key_type=key_type,
        key_len=datatypes.key_size(key_type, explicit_len),
        size=size,
        expire=expire,
        nopurge=nopurge,
        peers=peers,
        store=tuple(store),
        srvkey=srvkey,
    )


def _legacy_family(name: str) -> str:
    """How HAProxy names the legacy side of an exclusive pair: ``gpc[0/1]``."""
    return {"gpc0": "gpc[0/1]", "gpc1": "gpc[0/1]", "gpt0": "gpt0"}.get(
        name, "gpc[0/1]_rate" if name.endswith("_rate") else name
    )


def _split_store(text: str) -> list[str]:
    """Split ``a,b(1,2),c(10s)`` on the commas outside parentheses."""
    items: list[str] = []
    depth = 0
    cur: list[str] = []
    for c in text:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    items.append("".join(cur))
    return items


def _parse_store_item(text: str) -> StoreItem:
    m = _STORE_ITEM.match(text)
    if m is None or m.group(1) not in datatypes.BY_NAME:
        name = m.group(1) if m else text
        raise ValueError(f"stick-table: unknown store option '{name}'.")
    name, argtext = m.group(1), m.group(2)
    dt = datatypes.BY_NAME[name]
    args = [a.strip() for a in argtext.split(",")] if argtext else []
    needed = (1 if dt.is_array else 0) + (1 if dt.is_rate else 0)
    if len(args) < needed:
        raise ValueError(f"stick-table: missing argument to store option '{name}'.")
    if len(args) > needed:
        raise ValueError(f"stick-table: unexpected argument to store option '{name}'.")
    count: int | None = None
    period: int | None = None
    if dt.is_array:
        if not args[0].isdigit() or not 1 <= int(args[0]) <= datatypes.MAX_ARRAY_ELEMENTS:
            raise ValueError(
                f"stick-table: array size is out of allowed range (1-{datatypes.MAX_ARRAY_ELEMENTS}) "
                f"for store option '{name}'."
            )
        count = int(args[0])
    if dt.is_rate:
        text_period = args[-1]
        try:
            period = parse_time(text_period)
        except ValueError:
            raise ValueError(
                f"stick-table: invalid argument to store option '{name}' : "
                f"unexpected character in time value '{text_period}'."
            ) from None
        if period <= 0:
            raise ValueError(f"stick-table: invalid period for store option '{name}' (must be > 0).")
    return StoreItem(name=name, period=period, count=count)
