"""Owns the stick-table keywords of the rule language, registered into the rules
registries at import: the ``track-sc0/1/2`` and ``sc-inc-gpc*``/``sc-set-gpt*``
actions, the ``sc_*``/``scN_*`` and ``src_*`` fetches, the ``table_*`` converters,
and the store/lookup helpers of ``stick on|match|store-request``.

Semantics follow HAProxy 2.6 (``stick_table.c``):

- ``scN_X`` reads the entry tracked in slot N; an untracked slot gives no sample.
  With a table argument the tracked key is looked up in that table instead (a
  missing entry reads as 0).
- ``src_X([table])`` looks the client address up (default: the proxy's own table);
  an absent entry reads as 0.  ``src_inc_*``/``src_clr_*``/``src_updt_conn_cnt``
  create the entry.
- ``table_X(table)`` converters look their input up; absent → 0.
- Reading a type the table does not store gives no sample, so the ACL does not
  match.  ``gpc0``/``gpc1``/``gpt0``/``gpc0_rate``/``gpc1_rate`` fall back to the
  first elements of ``gpc``/``gpt``/``gpc_rate`` arrays, as the doc says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from minilb import speedups
from minilb.rules import actions as A
from minilb.rules import samples as S
from minilb.stick import tracking
from minilb.stick.table import InvalidKey, StickTable

#: the compiled ``scN_<rate>`` fetch (`minilb/_speedups/stick.pyx`), or None
_speedups = speedups.load("stick", speedups.STICK_API)

MASK32 = 0xFFFFFFFF
NB_SLOTS = 3  # tune.stick-counters default in 2.6

# --------------------------------------------------------------------------- keys


def sample_key(table: StickTable, value: Any) -> Any:
    """The table key for a sample value (HAProxy's ``smp_to_stkey``), or None."""
    if value is None:
        return None
    kt = table.key_type
    t = type(value)
    try:
        if kt == "ip":
            if t is S.IPv4:
                return int(value)
            if t is S.IPv6:
                mapped = value.ipv4_mapped
                return None if mapped is None else int(mapped)
            if t is int:
                return value & MASK32
            if t is str:
                return table.key_from_sample(value)
            return None
        if kt == "ipv6":
            if t is S.IPv6:
                return value.packed
            if t is S.IPv4:
                return ipaddress.IPv6Address("::ffff:" + str(value)).packed
            if t is str:
                return table.normalize_key(value)
            return None
        if kt == "integer":
            if t is int or t is bool:
                return int(value) & MASK32
            if t is S.IPv4:
                return int(value)
            if t is str or t is bytes:
                as_int = S.as_int(value)
                return None if as_int is None else as_int & MASK32
            return None
        if kt == "string":
            if t is bytes:
                return table.normalize_key(value)
            text = S.as_str(value)
            return None if text is None else table.normalize_key(text.encode("latin-1", "replace"))
        # binary
        if t is bytes:
            return table.normalize_key(value)
        if t is str:
            return table.normalize_key(value.encode("latin-1", "replace"))
        if t is S.IPv4 or t is S.IPv6:
            return table.normalize_key(value.packed)
        if t is int:
            return table.normalize_key((value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"))
    except (InvalidKey, UnicodeError):
        return None
    return None


# --------------------------------------------------------------------------- reading values

#: legacy name -> (array type, element) used when the legacy type is not stored
_LEGACY = {
    "gpc0": ("gpc", 0),
    "gpc1": ("gpc", 1),
    "gpt0": ("gpt", 0),
    "gpc0_rate": ("gpc_rate", 0),
    "gpc1_rate": ("gpc_rate", 1),
}


def _locate(table: StickTable, name: str, idx: int = 0) -> tuple[str, int] | None:
    """Where a (possibly legacy) type lives in ``table``, or None when not stored."""
    col = table.columns.get(name)
    if col is not None and idx < col.count:
        return name, idx
    legacy = _LEGACY.get(name)
    if legacy is not None:
        col = table.columns.get(legacy[0])
        if col is not None and legacy[1] < col.count:
            return legacy
    return None


def read(table: StickTable, row: int, name: str, idx: int = 0) -> int | None:
    where = _locate(table, name, idx)
    if where is None:
        return None
    value = table.get(row, where[0], where[1])
    return value if isinstance(value, int) else None


def _plain(name: str) -> Callable[[StickTable, int], int | None]:
    def metric(table: StickTable, row: int) -> int | None:
        return read(table, row, name)

    return metric


def _rate(name: str) -> Callable[[StickTable, int], int | None]:
    def metric(table: StickTable, row: int) -> int | None:
        col = table._c[name]
        if col is not None:
            return table.read_rate(col, row)
        return read(table, row, name)

    return metric


def _kbytes(name: str) -> Callable[[StickTable, int], int | None]:
    def metric(table: StickTable, row: int) -> int | None:
        value = read(table, row, name)
        return None if value is None else value >> 10

    return metric


def inc_gpc(
    table: StickTable, row: int, counter: str, rate: str, idx: int | None = None, inc: int = 1
) -> int | None:
    """Increment a general purpose counter and its rate (whichever are stored).
    Returns the counter's new value (0 if only the rate is stored), or None when
    neither is stored.  The entry is touched."""
    if idx is None:
        cnt_at = _locate(table, counter)
        rate_at = _locate(table, rate)
    else:
        cnt_at = _locate(table, "gpc", idx)
        rate_at = _locate(table, "gpc_rate", idx)
    if cnt_at is None and rate_at is None:
        return None
    value = 0
    if rate_at is not None:
        table.add(row, rate_at[0], inc, rate_at[1])
    if cnt_at is not None:
        table.add(row, cnt_at[0], inc, cnt_at[1])
        value = table.get(row, cnt_at[0], cnt_at[1])
    table.touch_local(row)
    return value


def clr_gpc(table: StickTable, row: int, counter: str, idx: int | None = None) -> int | None:
    """Reset a general purpose counter; returns its previous value (None if not stored)."""
    at = _locate(table, counter) if idx is None else _locate(table, "gpc", idx)
    if at is None:
        return None
    value = table.get(row, at[0], at[1])
    table.set(row, at[0], 0, at[1])
    table.touch_local(row)
    return value


def set_gpt(table: StickTable, row: int, value: int, idx: int | None = None) -> bool:
    at = _locate(table, "gpt0") if idx is None else _locate(table, "gpt", idx)
    if at is None:
        return False
    table.set(row, at[0], value, at[1])
    table.touch_local(row)
    return True


# metric name -> (fn(table, row) -> value or None, whether it needs an index argument)
_METRICS: dict[str, tuple[Callable[..., Any], bool]] = {
    "get_gpc0": (_plain("gpc0"), False),
    "get_gpc1": (_plain("gpc1"), False),
    "get_gpt0": (_plain("gpt0"), False),
    "gpc0_rate": (_rate("gpc0_rate"), False),
    "gpc1_rate": (_rate("gpc1_rate"), False),
    "conn_cnt": (_plain("conn_cnt"), False),
    "conn_cur": (_plain("conn_cur"), False),
    "conn_rate": (_rate("conn_rate"), False),
    "sess_cnt": (_plain("sess_cnt"), False),
    "sess_rate": (_rate("sess_rate"), False),
    "http_req_cnt": (_plain("http_req_cnt"), False),
    "http_req_rate": (_rate("http_req_rate"), False),
    "http_err_cnt": (_plain("http_err_cnt"), False),
    "http_err_rate": (_rate("http_err_rate"), False),
    "http_fail_cnt": (_plain("http_fail_cnt"), False),
    "http_fail_rate": (_rate("http_fail_rate"), False),
    "bytes_in_rate": (_rate("bytes_in_rate"), False),
    "bytes_out_rate": (_rate("bytes_out_rate"), False),
    "kbytes_in": (_kbytes("bytes_in_cnt"), False),
    "kbytes_out": (_kbytes("bytes_out_cnt"), False),
    "trackers": (lambda table, row: table.ref_count(row), False),
    "inc_gpc0": (lambda table, row: inc_gpc(table, row, "gpc0", "gpc0_rate"), False),
    "inc_gpc1": (lambda table, row: inc_gpc(table, row, "gpc1", "gpc1_rate"), False),
    "clr_gpc0": (lambda table, row: clr_gpc(table, row, "gpc0"), False),
    "clr_gpc1": (lambda table, row: clr_gpc(table, row, "gpc1"), False),
    "get_gpc": (lambda table, row, idx: read(table, row, "gpc", idx), True),
    "get_gpt": (lambda table, row, idx: read(table, row, "gpt", idx), True),
    "gpc_rate": (lambda table, row, idx: read(table, row, "gpc_rate", idx), True),
    "inc_gpc": (lambda table, row, idx: inc_gpc(table, row, "", "", idx), True),
    "clr_gpc": (lambda table, row, idx: clr_gpc(table, row, "", idx), True),
}

#: rate types read directly by name (the scN_ hot path)
_RATE_TYPES = {
    "gpc0_rate",
    "gpc1_rate",
    "conn_rate",
    "sess_rate",
    "http_req_rate",
    "http_err_rate",
    "http_fail_rate",
    "bytes_in_rate",
    "bytes_out_rate",
}

#: metrics that change the entry: ``src_*`` variants create it
_WRITERS = {"inc_gpc0", "inc_gpc1", "clr_gpc0", "clr_gpc1", "inc_gpc", "clr_gpc"}


def _other_table_row(tracker: tracking.Tracker, alt: StickTable) -> int | None:
    table, row, _ = tracker
    if alt is table:
        return row
    key = (
        alt.key_from_bytes(table.key_to_bytes(table._keys[row]))
        if alt.key_type != table.key_type
        else (table._keys[row])
    )
    return alt.lookup(key)


def _sc_value(metric: Callable[..., Any], sess: Any, slot: int, alt: Any, extra: tuple) -> Any:
    if not 0 <= slot < NB_SLOTS:
        return None
    tracker = sess.stkctr[slot]
    if tracker is None:
        return None
    if alt is None:
        return metric(tracker[0], tracker[1], *extra)
    row = _other_table_row(tracker, alt)
    if row is None:
        return 0
    return metric(alt, row, *extra)


def _make_sc_rate(name: str, slot: int, compiled: bool = True) -> Callable[..., Any]:
    """``scN_<rate>``: the hot path of rate checks, without the generic plumbing
    (compiled where ``minilb_speedups.stick`` is built and ``compiled``)."""
    metric = _rate(name)
    if compiled and _speedups is not None:
        return _speedups.ScRate(name, slot, metric, _sc_value).fetch

    def fetch(sess, txn, table=None):
        tracker = sess.stkctr[slot]
        if tracker is None:
            return None
        if table is None:
            t, row, _ = tracker
            try:
                read = t._rate_readers[name]  # generated (or compiled) for the table's stored rates
            except KeyError:
                return metric(t, row)
            return read(row)
        return _sc_value(metric, sess, slot, table, ())

    return fetch


def _make_sc(metric: Callable[..., Any], slot: int | None, indexed: bool) -> Callable[..., Any]:
    if slot is None and indexed:

        def fetch(sess, txn, idx, ctr, table=None):
            return _sc_value(metric, sess, ctr, table, (idx,))
    elif slot is None:

        def fetch(sess, txn, ctr, table=None):
            return _sc_value(metric, sess, ctr, table, ())
    elif indexed:

        def fetch(sess, txn, idx, table=None):
            return _sc_value(metric, sess, slot, table, (idx,))
    else:

        def fetch(sess, txn, table=None):
            return _sc_value(metric, sess, slot, table, ())

    return fetch


def _src_key(sess: Any, table: StickTable) -> Any:
    src = sess.src
    if not src:
        return None
    return sample_key(table, src if table.key_type in ("ip", "string") else S.ip_value(src))


def _make_src(metric: Callable[..., Any], indexed: bool, creates: bool) -> Callable[..., Any]:
    def value(sess: Any, table: StickTable, extra: tuple) -> Any:
        key = _src_key(sess, table)
        if key is None:
            return None
        row = table.get_or_create(key) if creates else table.lookup(key)
        if row is None:
            return 0
        return metric(table, row, *extra)

    if indexed:

        def fetch(sess, txn, idx, table):
            return value(sess, table, (idx,))
    else:

        def fetch(sess, txn, table):
            return value(sess, table, ())

    return fetch


def _own_table_resolver(position: int) -> Callable[[list, Any], list]:
    """Compile-time hook: an omitted table argument means the proxy's own table."""

    def resolve(args: list, ctx: Any) -> list:
        while len(args) <= position:
            args.append(None)
        if args[position] is None:
            own = ctx.own_table if ctx is not None else None
            if own is None:
                name = getattr(getattr(ctx, "proxy", None), "name", "")
                raise S.SampleError(f"unable to find table '{name}'")
            args[position] = own
        return args

    return resolve


def _src_updt_conn_cnt(sess, txn, table):
    key = _src_key(sess, table)
    if key is None:
        return None
    row = table.get_or_create(key)
    if row is None:
        return 0
    if table.columns.get("conn_cnt") is None:
        return None
    table.add(row, "conn_cnt")
    table.touch_local(row)
    return table.get(row, "conn_cnt")


def _sc_tracked(slot: int | None) -> Callable[..., Any]:
    if slot is None:

        def fetch(sess, txn, ctr, table=None):
            return 0 <= ctr < NB_SLOTS and sess.stkctr[ctr] is not None
    else:

        def fetch(sess, txn, table=None):
            return sess.stkctr[slot] is not None

    return fetch


# --------------------------------------------------------------------------- table_* converters


def _make_conv(metric: Callable[..., Any], indexed: bool) -> Callable[..., Any]:
    def value(sample: Any, table: StickTable, extra: tuple) -> Any:
        key = sample_key(table, sample)
        if key is None:
            return None
        row = table.lookup(key)
        if row is None:
            return 0
        return metric(table, row, *extra)

    if indexed:

        def conv(sample, idx, table):
            return value(sample, table, (idx,))
    else:

        def conv(sample, table):
            return value(sample, table, ())

    return conv


def _conv_server_id(sample, table):
    key = sample_key(table, sample)
    if key is None:
        return None
    row = table.lookup(key)
    if row is None:
        return 0
    return read(table, row, "server_id")


def _conv_expire(sample, table, default=None):
    key = sample_key(table, sample)
    row = None if key is None else table.lookup(key)
    if row is None:
        return default
    return table.expire_in(row) if table.expire else default


def _conv_idle(sample, table, default=None):
    key = sample_key(table, sample)
    row = None if key is None else table.lookup(key)
    if row is None:
        return default
    return table.idle_ms(row) if table.expire else default


# --------------------------------------------------------------------------- actions

_PHASES = {
    A.TCP_CONNECTION: tracking.PHASE_CONNECTION,
    A.TCP_SESSION: tracking.PHASE_CONNECTION,
    A.TCP_CONTENT: tracking.PHASE_CONTENT,
    A.HTTP_REQUEST: tracking.PHASE_HTTP,
}


def _parse_track(slot: int) -> Callable[[A.ActionSpec, Any], Any]:
    def parse(spec: A.ActionSpec, ctx: Any) -> Any:
        if not spec.args:
            raise A.ActionError(f"'{spec.word}' : missing sample expression")
        expr = ctx.parse_expr(spec.args[0])
        used = 1
        if len(spec.args) > 1 and spec.args[1] == "table":
            if len(spec.args) < 3:
                raise A.ActionError(f"'{spec.word}' : missing table name")
            table = ctx.table(spec.args[2])
            used = 3
        else:
            table = ctx.own_table
            if table is None:
                name = getattr(ctx.proxy, "name", "")
                raise A.ActionError(f"'{spec.word}' : unable to find table '{name}'")
        phase = _PHASES.get(spec.ruleset, tracking.PHASE_HTTP)
        evaluate = expr.eval
        track = tracking.track

        if getattr(table, "key_type", None) == "ip":
            key_of_str = table.key_from_sample if isinstance(table, StickTable) else None
            http_request = phase == tracking.PHASE_HTTP
            stream = phase != tracking.PHASE_CONNECTION

            def action(sess, txn):
                stkctr = sess.stkctr
                if stkctr[slot] is not None:
                    return None
                value = evaluate(sess, txn)
                if value.__class__ is S.IPv4:
                    key = int(value)
                elif value.__class__ is str and key_of_str is not None:
                    try:
                        key = key_of_str(value)
                    except InvalidKey:
                        return None
                else:
                    key = sample_key(table, value)
                    if key is None:
                        return None
                # tracking.track(sess, slot, table, key, phase), inlined
                row = table._track(key, http_request)
                if row is not None:
                    stkctr[slot] = (table, row, stream)
                return None
        else:

            def action(sess, txn):
                if sess.stkctr[slot] is not None:
                    return None
                key = sample_key(table, evaluate(sess, txn))
                if key is not None:
                    track(sess, slot, table, key, phase)
                return None

        return action, used

    return parse


def _int_arg(word: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise A.ActionError(f"'{word}' : invalid integer '{text}'") from None


def _slot_arg(word: str, text: str) -> int:
    slot = _int_arg(word, text)
    if not 0 <= slot < NB_SLOTS:
        raise A.ActionError(f"'{word}' : invalid stick counter {slot}, must be between 0 and {NB_SLOTS - 1}")
    return slot


def _index_and_slot(spec: A.ActionSpec, array: str | None) -> tuple[int | None, int]:
    """The parenthesised arguments of ``sc-inc-gpc(I,N)``/``sc-set-gpt(I,N)`` (``array``
    names the array) or of their legacy forms ``sc-inc-gpc0(N)`` (``array`` None: no
    index, the slot defaults to 0)."""
    pargs = spec.paren_args or []
    if array is None:
        return None, _slot_arg(spec.word, pargs[0] if pargs else "0")
    if len(pargs) != 2:
        raise A.ActionError(f"'{spec.word}' : expects 2 arguments: <{array} IDX>,<track ID>")
    return _int_arg(spec.word, pargs[0]), _slot_arg(spec.word, pargs[1])


def _parse_inc_gpc(legacy: str | None) -> Callable[[A.ActionSpec, Any], Any]:
    """``sc-inc-gpc0(N)``, ``sc-inc-gpc1(N)``, ``sc-inc-gpc(I,N)``."""

    def parse(spec: A.ActionSpec, ctx: Any) -> Any:
        idx, slot = _index_and_slot(spec, "gpc" if legacy is None else None)
        rate = legacy + "_rate" if legacy else ""

        def action(sess, txn):
            tr = sess.stkctr[slot]
            if tr is not None:
                inc_gpc(tr[0], tr[1], legacy or "", rate, idx)
            return None

        return action, 0

    return parse


def _parse_set_gpt(indexed: bool) -> Callable[[A.ActionSpec, Any], Any]:
    """``sc-set-gpt0(N) VALUE|EXPR`` and ``sc-set-gpt(I,N) VALUE|EXPR``."""

    def parse(spec: A.ActionSpec, ctx: Any) -> Any:
        idx, slot = _index_and_slot(spec, "gpt" if indexed else None)
        if not spec.args:
            raise A.ActionError(f"'{spec.word}' : expects a value or a sample expression")
        text = spec.args[0]
        constant: int | None
        try:
            constant = int(text)
            expr = None
        except ValueError:
            constant = None
            expr = ctx.parse_expr(text)

        def action(sess, txn):
            tr = sess.stkctr[slot]
            if tr is None:
                return None
            value = constant if expr is None else S.as_int(expr.eval(sess, txn))
            if value is not None:
                set_gpt(tr[0], tr[1], value, idx)
            return None

        return action, 1

    return parse


# --------------------------------------------------------------------------- stick on / match / store


def stick_store(table: StickTable, key: Any, server_id: int, server_key: str | None) -> bool:
    """``stick store-request`` / ``stick on``: remember the server for ``key`` (a
    normalised key, see `sample_key`).  Returns False when the table is full."""
    row = table.get_or_create(key)
    if row is None:
        return False
    table.set(row, "server_id", server_id)
    if server_key is not None:
        table.set(row, "server_key", server_key)
    table.touch_local(row)
    return True


def stick_lookup(table: StickTable, key: Any) -> tuple[int | None, str | None] | None:
    """``stick match`` / ``stick on``: (server_id, server_key) stored for ``key``,
    or None.  HAProxy 2.6 prefers the server named by server_key and falls back to
    server_id.  A hit refreshes the entry's expiry."""
    row = table.lookup(key)
    if row is None:
        return None
    server_id = table.get(row, "server_id")
    server_key = table.get(row, "server_key")
    if not server_id and server_key is None:
        return None
    table.touch_local(row)
    return server_id, server_key


# --------------------------------------------------------------------------- registration


def register() -> None:
    """Register every stick-table keyword (idempotent; done at import)."""
    TABLE = S.ARG_TABLE
    SINT = S.ARG_SINT
    for metric_name, (metric, indexed) in _METRICS.items():
        # sc_X(ctr[,table]) / sc_X(idx,ctr[,table])
        if indexed:
            S.register_fetch(
                f"sc_{metric_name}",
                _make_sc(metric, None, True),
                args=(SINT, SINT, TABLE),
                min_args=2,
                out=S.SINT,
            )
        else:
            S.register_fetch(
                f"sc_{metric_name}", _make_sc(metric, None, False), args=(SINT, TABLE), min_args=1, out=S.SINT
            )
        for slot in range(NB_SLOTS):
            if indexed:
                S.register_fetch(
                    f"sc{slot}_{metric_name}",
                    _make_sc(metric, slot, True),
                    args=(SINT, TABLE),
                    min_args=1,
                    out=S.SINT,
                )
            else:
                fast = metric_name in _RATE_TYPES
                S.register_fetch(
                    f"sc{slot}_{metric_name}",
                    _make_sc_rate(metric_name, slot) if fast else _make_sc(metric, slot, False),
                    args=(TABLE,),
                    min_args=0,
                    out=S.SINT,
                )
        if metric_name == "trackers":
            continue
        creates = metric_name in _WRITERS
        if indexed:
            S.register_fetch(
                f"src_{metric_name}",
                _make_src(metric, True, creates),
                args=(SINT, TABLE),
                min_args=1,
                out=S.SINT,
                needs=S.NEEDS_L4,
                resolve=_own_table_resolver(1),
            )
            if metric_name in ("get_gpc", "get_gpt", "gpc_rate"):
                conv_name = {"get_gpc": "table_gpc", "get_gpt": "table_gpt", "gpc_rate": "table_gpc_rate"}
                S.register_converter(
                    conv_name[metric_name],
                    _make_conv(metric, True),
                    args=(SINT, TABLE),
                    in_type=S.ANY,
                    out=S.SINT,
                )
        else:
            S.register_fetch(
                f"src_{metric_name}",
                _make_src(metric, False, creates),
                args=(TABLE,),
                min_args=0,
                out=S.SINT,
                needs=S.NEEDS_L4,
                resolve=_own_table_resolver(0),
            )
            if not creates:
                conv = "table_" + metric_name.replace("get_", "")
                S.register_converter(
                    conv, _make_conv(metric, False), args=(TABLE,), in_type=S.ANY, out=S.SINT
                )
    S.register_converter(
        "table_trackers", _make_conv(_METRICS["trackers"][0], False), args=(TABLE,), in_type=S.ANY, out=S.SINT
    )
    S.register_converter("table_server_id", _conv_server_id, args=(TABLE,), in_type=S.ANY, out=S.SINT)
    S.register_converter(
        "table_expire", _conv_expire, args=(TABLE, SINT), min_args=1, in_type=S.ANY, out=S.SINT
    )
    S.register_converter("table_idle", _conv_idle, args=(TABLE, SINT), min_args=1, in_type=S.ANY, out=S.SINT)
    S.register_fetch(
        "src_updt_conn_cnt",
        _src_updt_conn_cnt,
        args=(TABLE,),
        min_args=0,
        out=S.SINT,
        needs=S.NEEDS_L4,
        resolve=_own_table_resolver(0),
    )
    S.register_fetch("sc_tracked", _sc_tracked(None), args=(SINT, TABLE), min_args=1, out=S.BOOL)
    for slot in range(NB_SLOTS):
        S.register_fetch(f"sc{slot}_tracked", _sc_tracked(slot), args=(TABLE,), min_args=0, out=S.BOOL)

    track_sets = (A.TCP_CONNECTION, A.TCP_SESSION, A.TCP_CONTENT, A.HTTP_REQUEST)
    for slot in range(NB_SLOTS):
        A.register_action(track_sets, f"track-sc{slot}", _parse_track(slot))
    gpc_sets = track_sets + (A.HTTP_RESPONSE, A.HTTP_AFTER_RESPONSE, A.TCP_RESPONSE)
    A.register_action(gpc_sets, "sc-inc-gpc0", _parse_inc_gpc("gpc0"), paren=True)
    A.register_action(gpc_sets, "sc-inc-gpc1", _parse_inc_gpc("gpc1"), paren=True)
    A.register_action(gpc_sets, "sc-inc-gpc", _parse_inc_gpc(None), paren=True)
    A.register_action(gpc_sets, "sc-set-gpt0", _parse_set_gpt(False), paren=True)
    A.register_action(gpc_sets, "sc-set-gpt", _parse_set_gpt(True), paren=True)


register()

# the stick on/match/store-request rules register themselves too (they use the helpers above)
from minilb.stick import persistence  # noqa: E402,F401
