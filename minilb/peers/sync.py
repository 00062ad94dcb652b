"""Owns the replication logic of one peers section: which peer lacks what, and when.

`PeersSync` keeps, per remote peer, its connection state, reconnect timing and one
`TableCursor` per shared table (last pushed, acked, last received and acked ids, teach
origin: peers-wire.md 9.2), and per live connection a `Link` (its `Session`, the tables
the remote side defined, what we are teaching or learning on it, heartbeat and liveness
times).  It decides every message: incremental pushes in batches of
``tune.peers.max-updates-at-once`` (UPDATE then INCREMENTAL-UPDATE for consecutive ids,
DEFINE before switching tables), one ACK per table per received batch, full teaches
(TIMED updates with the remaining expiry, then FINISHED or PARTIAL), the learning
state machine of 9.6 (an old local process first, then one remote peer), heartbeats
after 3 s without pushing, liveness checks every 5 s, reconnects after 50-2050 ms
(injected `random.Random`) or on HAProxy's 5 s cadence, and last-hello-wins collisions.

Learned updates go to `StickTable.apply_remote` (or the table's generated equivalents:
the decoder's `codec.update_runner` over `remote_apply_source`), which does not
announce them as local changes.  A full teach is encoded ``TEACH_BATCH`` entries per
step (`wire_teach_encoder`; ``COMPILED_TEACH_BATCH`` with the compiled encoder);
after the learner's CONFIRM only what changed since the
teach began is pushed (HAProxy pushes every entry once more, pitfall 12).  Unlike HAProxy 2.6 (pitfall 16), a stopping process hands its tables over to
its successor even when it is not fully synchronised itself (issue 6).

Nothing here does I/O or reads a clock: the adapter feeds events (`connection_made`,
`connection_failed`, `incoming`, `data_received`, `connection_lost`), calls `tick()` at
`next_deadline()`, asks `dials_due()` which peers to dial, and after each call writes
every link's `data_to_send()` and closes the links whose `should_close` is set.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from minilb.peers import codec
from minilb.peers import messages as m
from minilb.peers.session import Session
from minilb.stick.datatypes import BY_NAME, KEY_TYPE_CODES
from minilb.timebase import Clock, now_ms

MASK32 = 0xFFFFFFFF
HALF32 = 0x80000000

MAX_UPDATES_AT_ONCE = 200
HEARTBEAT_MS = 3000
LIVENESS_MS = 5000
RESYNC_MS = 5000
RECONNECT_MS = 5000
CONNECT_RETRY_MS = 1000
CONNECT_RETRIES = 3
HANDSHAKE_MS = 5000
HANDOVER_RETRY_MS = 500
#: a stopping process gives up its hand-over when the successor has not answered, or
#: the transfer has not moved (nothing sent, nothing received), for this long
HANDOVER_MS = 5000
JITTER_MIN_MS = 50
JITTER_MAX_MS = 2050
#: entries a full teach encodes per call (about 2 ms: long enough to amortise a reactor
#: turn, short enough not to stall traffic)
TEACH_BATCH = 2000
#: the same with the compiled teach encoder (``minilb_speedups.teach``: about 0.03 us
#: an entry numbered for the peers, 0.3 one that is not, against 2.2 for the generated
#: one): a step of at most about 3 ms, five times fewer reactor turns (timer, write,
#: ACKs) than TEACH_BATCH; larger steps would gain little and outgrow
#: MAX_PENDING_OUTPUT (about 170 KB a step for the benchmark's table)
COMPILED_TEACH_BATCH = 10000
#: stop pushing to a link whose unsent output exceeds this (the adapter drains it)
MAX_PENDING_OUTPUT = 256 * 1024


def _s32(value: int) -> int:
    value &= MASK32
    return value - (1 << 32) if value & HALF32 else value


def table_define(table: Any, table_id: int) -> m.Define:
    """The DEFINE announcing a local stick table (spec: `minilb.config.model.TableSpec`)."""
    spec = table.spec
    bits = 0
    params = []
    for item in sorted(spec.store, key=lambda it: BY_NAME[it.name].bit):
        dt = BY_NAME[item.name]
        bits |= 1 << dt.bit
        if dt.has_param_block:
            params.append(
                m.DefineParam(
                    dt.bit,
                    count=item.count or 1 if dt.is_array else None,
                    period=item.period or 0 if dt.is_rate else None,
                )
            )
    return m.Define(
        table_id,
        spec.wire_name,
        KEY_TYPE_CODES[spec.key_type],
        spec.key_len,
        bits,
        spec.expire or 0,
        tuple(params),
    )


def table_key(table: Any, key: m.Key) -> Any:
    """A decoded wire key in the table's stored form."""
    if isinstance(key, ipaddress.IPv4Address):
        key = int(key)
    elif isinstance(key, ipaddress.IPv6Address):
        key = key.packed
    return table.normalize_key(key)


def _applier(table: Any, define: m.Define) -> Callable[..., Any]:
    """``apply(key, values, expire_ms)`` storing a decoded update of ``define`` in
    ``table`` (the table's generated fast path when it has one)."""
    make = getattr(table, "remote_applier", None)
    if make is not None:
        return make(codec.update_plan(define))
    apply_remote = table.apply_remote
    return lambda key, values, expire_ms: apply_remote(key, dict(values), expire_ms)


def _wire_encoder(table: Any) -> Callable[..., bytes] | None:
    """``encode(update_id, expire, now, row) -> bytes``: the table's generated encoder of
    whole update messages, or None (tables without one use `Encoder.encode_entry`)."""
    make = getattr(table, "wire_encoder", None)
    return make() if make is not None else None


class TableCursor:
    """What one remote peer has of one local table (kept across sessions)."""

    __slots__ = ("last_pushed", "acked", "last_get", "last_acked", "teaching_origin")

    def __init__(self) -> None:
        self.last_pushed = 0
        self.acked = 0  # restart point of the next session ("update" in show peers)
        self.last_get = 0
        self.last_acked = 0
        self.teaching_origin = 0


class SharedTable:
    """A local table with its local id and its DEFINE."""

    def __init__(self, table: Any, table_id: int):
        self.table = table
        self.table_id = table_id
        table.sync = True  # the table numbers its local changes for us
        self.define = table_define(table, table_id)
        self.encoded_define = codec.encode(self.define)
        #: the learner's `codec.update_runner` per (sender's plan, key type)
        self.runners: dict[tuple, Callable[..., tuple] | None] = {}


class Peer:
    """A peer of the section (the local one included) and its connection state."""

    def __init__(self, name: str, is_local: bool, tables: Sequence[SharedTable]):
        self.name = name
        self.is_local = is_local
        self.cursors = {t.table_id: TableCursor() for t in tables}
        self.link: Link | None = None
        self.dialing = False
        self.next_dial_ms: int | None = None
        self.attempt_started_ms = 0
        self.retries = 0
        self.reconnect_at_ms: int | None = None
        self.gave_up = False  # a non-200 answer: HAProxy never redials by itself
        self.downgrade = False  # it answered 502: announce 2.0
        self.not_up_to_date = False  # it answered our resync with PARTIAL
        self.last_status: str = "NONE"
        self.collisions = 0
        self.tx_heartbeats = 0
        self.rx_heartbeats = 0
        self.new_conn = 0
        self.proto_err = 0
        self.last_handshake_ms: int | None = None


class Link:
    """One live connection of the section, with its per-session state."""

    def __init__(self, session: Session, peer: Peer | None, now: int):
        self.session = session
        self.peer = peer
        self.created_ms = now
        self.should_close = False
        self.close_reason: str | None = None
        self.paused = False  # the adapter's transport is full
        # receive side
        self.remote_tables: dict[int, SharedTable | None] = {}
        #: per remote table id: the local table's `remote_applier` for its DEFINE
        self.appliers: dict[int, Callable[..., Any]] = {}
        self.rx_last_get: dict[int, int] = {}
        self.rx_last_acked: dict[int, int] = {}
        self.rx_since_check = False
        # send side
        self.send_table: int | None = None
        #: per local table id: (walk over the update list, last id it yielded); kept
        #: between batches so that each batch costs what it sends
        self.walks: dict[int, tuple[Iterator, int]] = {}
        self.last_push_ms = now
        self.alive_deadline_ms: int | None = None
        #: the full teach in progress: (bytes, number of entries in them) per step
        self.teach: Iterator[tuple[bytes, int]] | None = None
        #: per local table id: its `local_update` when the teach began (what it covers)
        self.taught_upto: dict[int, int] = {}
        self.awaiting_confirm = False
        self.learning = False  # we asked it for a full resync (or it is the old process)
        self.established_seen = False
        self.wake: Callable[[], None] | None = None

    def data_to_send(self) -> bytes:
        return self.session.data_to_send()

    def __repr__(self) -> str:
        name = self.peer.name if self.peer else "?"
        return f"<Link {self.session.role} {name} {self.session.state}>"


class PeersSync:
    """Replication of one peers section (see the module docstring)."""

    def __init__(
        self,
        local_name: str,
        peer_names: Sequence[str],
        tables: Sequence[Any],
        clock: Clock,
        rng: random.Random,
        pid: int,
        *,
        has_old_process: bool = False,
        max_updates: int = MAX_UPDATES_AT_ONCE,
        teach_batch: int | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.local_name = local_name
        self.clock = clock
        self.rng = rng
        self.pid = pid
        self.max_updates = max_updates
        # entries per step of a full teach: ``teach_batch`` when given, else by encoder
        self.teach_batch = TEACH_BATCH if teach_batch is None else teach_batch
        self.compiled_teach_batch = COMPILED_TEACH_BATCH if teach_batch is None else teach_batch
        self.log = log or (lambda text: None)
        self.tables = [SharedTable(t, i + 1) for i, t in enumerate(tables)]
        self._by_wire = {(t.define.name, t.define.key_type, t.define.key_len): t for t in self.tables}
        self._by_id = {t.table_id: t for t in self.tables}
        names = list(peer_names)
        if local_name not in names:
            names.append(local_name)
        self.peers = {name: Peer(name, name == local_name, self.tables) for name in names}
        self.links: list[Link] = []
        self._logged: set[tuple[str, str]] = set()
        now = self.now()
        # learning state (9.6)
        self.has_old_process = has_old_process
        self.local_done = not has_old_process
        self.remote_done = False
        self.resync_deadline_ms: int | None = now + RESYNC_MS
        self.source: Link | None = None
        # stopping (old process handing over to its successor)
        self.stopping = False
        self.handover_deadline_ms: int | None = None
        self.handover_done = False
        self.handover_ok = False
        for peer in self.remote_peers():
            peer.next_dial_ms = now
            peer.attempt_started_ms = now

    # ------------------------------------------------------------------ helpers
    def now(self) -> int:
        return now_ms(self.clock)

    def remote_peers(self) -> list[Peer]:
        return [p for p in self.peers.values() if not p.is_local]

    @property
    def synced(self) -> bool:
        """Fully synchronised (both learning phases done)."""
        return self.local_done and self.remote_done

    def _jitter(self) -> int:
        return self.rng.randint(JITTER_MIN_MS, JITTER_MAX_MS)

    def _log_once(self, peer: str, what: str) -> None:
        if (peer, what) not in self._logged:
            self._logged.add((peer, what))
            self.log(what)

    def _accept_define(self, define: m.Define) -> bool:
        return (define.name, define.key_type, define.key_len) in self._by_wire

    def _runner_for(self, define: m.Define) -> Callable[..., tuple] | None:
        """The decoder's fast path storing updates of ``define`` into our table."""
        shared = self._by_wire.get((define.name, define.key_type, define.key_len))
        if shared is None:
            return None
        plan = codec.update_plan(define)
        key = (plan, define.key_type)
        if key not in shared.runners:
            make = getattr(shared.table, "remote_apply_source", None)
            source = make(plan) if make is not None else None
            shared.runners[key] = codec.update_runner(define, source) if source is not None else None
        return shared.runners[key]

    def _wake(self, link: Link) -> None:
        if link.wake is not None:
            link.wake()

    # ------------------------------------------------------------------ adapter events
    def dials_due(self) -> list[str]:
        """Peers to connect to now; each is returned once per attempt."""
        now = self.now()
        due = []
        for peer in self.peers.values():
            if peer.dialing or peer.link is not None or peer.next_dial_ms is None:
                continue
            if peer.is_local:
                if not self.stopping or self.handover_done:
                    continue
            else:
                if self.stopping or peer.gave_up or not self.local_done:
                    continue
            if _s32(now - peer.next_dial_ms) >= 0:
                peer.dialing = True
                due.append(peer.name)
        return due

    def connection_made(self, name: str) -> Link | None:
        """The TCP connection of a dial to ``name`` is up: returns the link whose hello
        is queued, or None if the connection is no longer wanted (close it)."""
        peer = self.peers[name]
        peer.dialing = False
        if peer.link is not None or (self.stopping and not peer.is_local):
            return None
        now = self.now()
        peer.retries = 0
        session = Session.connect(
            self.local_name,
            name,
            self.pid,
            version=m.VERSION_2_0 if peer.downgrade else m.VERSION_2_1,
            accept_define=self._accept_define,
            raw_ip_keys=True,
        )
        session.decoder.runner_for = self._runner_for
        link = Link(session, peer, now)
        peer.link = link
        peer.reconnect_at_ms = now + RECONNECT_MS
        peer.last_status = "CONN"
        self.links.append(link)
        return link

    def connection_failed(self, name: str) -> None:
        """A dial to ``name`` could not connect: retry 1 s later up to 3 times, then
        start a new attempt 5 s after the previous one began."""
        peer = self.peers[name]
        peer.dialing = False
        now = self.now()
        peer.last_status = "CONN_ERR"
        if peer.is_local:
            peer.next_dial_ms = now + HANDOVER_RETRY_MS
            return
        if peer.retries < CONNECT_RETRIES:
            peer.retries += 1
            peer.next_dial_ms = now + CONNECT_RETRY_MS
        else:
            peer.retries = 0
            start = peer.attempt_started_ms + RECONNECT_MS
            peer.next_dial_ms = start if _s32(start - now) > 0 else now
            peer.attempt_started_ms = peer.next_dial_ms

    def incoming(self) -> Link:
        """A connection accepted on the section's listener."""
        session = Session.accept(
            self.local_name,
            tuple(self.peers),
            busy=self._busy,
            accept_define=self._accept_define,
            raw_ip_keys=True,
        )
        session.decoder.runner_for = self._runner_for
        link = Link(session, None, self.now())
        self.links.append(link)
        return link

    def _busy(self, name: str) -> bool:
        peer = self.peers.get(name)
        if peer is None or not peer.is_local:
            return False
        return peer.link is not None and not peer.link.should_close

    def data_received(self, link: Link, data: bytes) -> None:
        """Bytes arrived on ``link``."""
        if link.should_close:
            return
        session = link.session
        was_established = session.established
        msgs = session.receive_data(data)
        if not was_established and session.established:
            self._established(link)
        if msgs:
            link.rx_since_check = True
            if self.stopping and link.peer is not None and link.peer.is_local:
                self.handover_deadline_ms = self.now() + HANDOVER_MS  # the successor is busy with us
            for msg in msgs:
                if link.should_close:
                    break
                self._handle(link, msg)
        if session.closed:
            self._closed_by_session(link)
        self._service_link(link, self.now())

    def connection_lost(self, link: Link) -> None:
        """The transport of ``link`` is gone."""
        if link in self.links:
            self.links.remove(link)
        link.should_close = True
        peer = link.peer
        if peer is None or peer.link is not link:
            return
        peer.link = None
        now = self.now()
        if link is self.source:
            self._source_lost(now)
        if peer.is_local:
            if self.stopping and not self.handover_done:
                if link.session.status in (None, m.STATUS_OK, m.STATUS_TRY_AGAIN):
                    peer.next_dial_ms = now + HANDOVER_RETRY_MS
                else:  # 501-504: the successor refuses us, give up as HAProxy does
                    self.handover_done = True
            return
        if link.session.status not in (None, m.STATUS_OK) and link.session.role == "connect":
            peer.gave_up = True
        if peer.next_dial_ms is None or _s32(peer.next_dial_ms - now) < 0:
            at = peer.reconnect_at_ms if peer.reconnect_at_ms is not None else now
            peer.next_dial_ms = at if _s32(at - now) > 0 else now
        peer.attempt_started_ms = peer.next_dial_ms

    def resume(self, link: Link) -> None:
        """The adapter's transport drained: push again."""
        link.paused = False
        self._service_link(link, self.now())

    # ------------------------------------------------------------------ session start / end
    def _established(self, link: Link) -> None:
        now = self.now()
        session = link.session
        if link.peer is None:  # acceptor: the hello named the peer
            peer = self.peers[session.remote_name]
            old = peer.link
            if old is not None and old is not link:
                peer.collisions += 1
                peer.next_dial_ms = now + self._jitter()
                self._kill(old, "collision: a newer hello won")
            peer.link = link
            link.peer = peer
            peer.reconnect_at_ms = now + RECONNECT_MS
            peer.gave_up = False
        peer = link.peer
        peer.last_status = "ESTA"
        peer.new_conn += 1
        peer.last_handshake_ms = now
        link.established_seen = True
        link.last_push_ms = now
        link.alive_deadline_ms = now + LIVENESS_MS
        for table in self.tables:
            cursor = peer.cursors[table.table_id]
            cursor.last_get = cursor.last_acked = 0
            acked = cursor.acked
            if _s32(acked - table.table.local_update) > 0:
                acked = (table.table.local_update + HALF32) & MASK32
            cursor.last_pushed = cursor.teaching_origin = acked
        if peer.is_local:
            if self.stopping and session.role == "connect":
                self._start_teach(link)  # hand everything over to our successor
            elif session.role == "accept" and not self.local_done and self.source is None:
                self.source = link  # our predecessor teaches us without being asked
                link.learning = True
        else:
            self._maybe_request_resync(link)

    def _maybe_request_resync(self, link: Link) -> None:
        if not (self.local_done and not self.remote_done and self.source is None):
            return
        peer = link.peer
        if peer is None or peer.is_local or peer.not_up_to_date or not link.session.established:
            return
        self.source = link
        link.learning = True
        link.session.send(m.ResyncRequest())

    def _source_lost(self, now: int) -> None:
        self.source = None
        self.resync_deadline_ms = now + RESYNC_MS

    def _kill(self, link: Link, reason: str) -> None:
        link.should_close = True
        link.close_reason = reason
        link.session.close(reason)
        if link.peer is not None and link.peer.link is link:
            link.peer.link = None
            if link is self.source:
                self._source_lost(self.now())
        self._wake(link)

    def _closed_by_session(self, link: Link) -> None:
        session = link.session
        link.should_close = True
        link.close_reason = session.close_reason
        if link.peer is not None and session.decoder_failed:
            link.peer.proto_err += 1
        if session.role == "connect" and link.peer is not None and session.status not in (None, m.STATUS_OK):
            link.peer.last_status = str(session.status)
            if session.downgrade_next:
                link.peer.downgrade = True
        self._wake(link)

    # ------------------------------------------------------------------ receiving
    def _handle(self, link: Link, msg: m.Message) -> None:
        if isinstance(msg, m.Applied):  # updates the decoder stored itself
            shared = link.remote_tables.get(msg.table_id)
            if shared is not None:
                link.rx_last_get[msg.table_id] = msg.last_id
                link.peer.cursors[shared.table_id].last_get = msg.last_id
        elif isinstance(msg, m.Update):
            self._apply_update(link, msg)
        elif isinstance(msg, m.Define):
            table = self._by_wire.get((msg.name, msg.key_type, msg.key_len))
            link.remote_tables[msg.table_id] = table
            if table is not None:
                link.appliers[msg.table_id] = _applier(table.table, msg)
            else:
                link.appliers.pop(msg.table_id, None)
            if table is None:
                self._log_once(
                    link.peer.name if link.peer else "?",
                    f"peers: ignoring table '{msg.name}' (key type {msg.key_type}, length {msg.key_len}) "
                    f"of peer '{link.peer.name if link.peer else '?'}': no matching local table",
                )
        elif isinstance(msg, m.Ack):
            self._apply_ack(link, msg)
        elif isinstance(msg, m.Heartbeat):
            if link.peer is not None:
                link.peer.rx_heartbeats += 1
        elif isinstance(msg, m.ResyncRequest):
            self._start_teach(link)
        elif isinstance(msg, m.ResyncFinished | m.ResyncPartial):
            self._resync_end(link, isinstance(msg, m.ResyncFinished))
        elif isinstance(msg, m.ResyncConfirm):
            self._confirm(link)

    def _apply_update(self, link: Link, msg: m.Update) -> None:
        shared = link.remote_tables.get(msg.table_id)
        if shared is None:
            return
        key = msg.key
        if key.__class__ is not int:  # ip/integer keys arrive in stored form already
            try:
                key = table_key(shared.table, key)
            except ValueError:
                return
        link.appliers[msg.table_id](key, msg.values, msg.expire)
        link.rx_last_get[msg.table_id] = msg.resolved_id
        link.peer.cursors[shared.table_id].last_get = msg.resolved_id

    def _apply_ack(self, link: Link, msg: m.Ack) -> None:
        if link.teach is not None or link.awaiting_confirm:
            return  # HAProxy ignores acks while teaching (pitfall 26)
        cursor = link.peer.cursors.get(msg.table_id)
        if cursor is not None:
            cursor.acked = msg.update_id

    def _resync_end(self, link: Link, finished: bool) -> None:
        self._send_acks(link)  # the ACKs of the taught tables come before CONFIRM
        link.session.send(m.ResyncConfirm())
        if link is not self.source:
            return
        peer = link.peer
        link.learning = False
        self.source = None
        now = self.now()
        if peer.is_local:
            if finished:
                self.local_done = self.remote_done = True
                self.resync_deadline_ms = None
            else:
                # issue 6: an incomplete hand-over goes on to remote learning at once
                self._local_phase_over(now)
            return
        if finished:
            self.remote_done = True
            self.resync_deadline_ms = None
        else:
            peer.not_up_to_date = True
            self.resync_deadline_ms = now + RESYNC_MS
            for other in self.links:
                if other is not link:
                    self._maybe_request_resync(other)

    def _confirm(self, link: Link) -> None:
        if not link.awaiting_confirm:
            return
        link.awaiting_confirm = False
        peer = link.peer
        if self.stopping and peer.is_local:
            self.handover_done = self.handover_ok = True
            self._kill(link, "hand-over confirmed")
            return
        # HAProxy goes back to the teaching origin here and pushes every local entry
        # once more (pitfall 12).  The learner has them all: push only what changed
        # since the teach began (`_start_teach` makes sure such entries got new ids)
        for table_id, cursor in peer.cursors.items():
            upto = link.taught_upto.get(table_id, cursor.teaching_origin)
            if _s32(upto - cursor.teaching_origin) > 0:
                cursor.last_pushed = upto
            else:
                cursor.last_pushed = cursor.teaching_origin

    # ------------------------------------------------------------------ teaching
    def _start_teach(self, link: Link) -> None:
        if link.teach is not None:
            return
        peer = link.peer
        link.taught_upto = {}
        for shared in self.tables:
            cursor = peer.cursors[shared.table_id]
            cursor.teaching_origin = cursor.last_pushed = cursor.acked
            table = shared.table
            link.taught_upto[shared.table_id] = table.local_update
            # the teach sends every entry numbered up to here: one changed after the
            # walk met it must get a new id (not keep its unpushed one) so that the
            # push after CONFIRM carries it
            if _s32(table.local_update - table.commit_update) > 0:
                table.commit_update = table.local_update
        link.awaiting_confirm = False
        link.teach = self._teach_messages(link)

    def _teach_messages(self, link: Link) -> Iterator[tuple[bytes, int]]:
        """DEFINE + every entry of every table (TIMED unless the peer speaks 2.0),
        then FINISHED or PARTIAL, as (bytes, entries in them) steps."""
        timed = not link.session.remote_is_2_0
        encoder = link.session.encoder
        for shared in self.tables:
            link.send_table = shared.table_id
            yield encoder.encode(shared.define), 1
            table = shared.table
            previous = None
            make = getattr(table, "wire_teach_encoder", None)
            teach = make() if make is not None else None
            if teach is not None:
                # row order; rows expired or purged since the walk started are not
                # met, rows allocated after it are not visited (they are newer than
                # the teach: pushed after CONFIRM); each step reads the clock anew
                batch = self.compiled_teach_batch if getattr(teach, "compiled", False) else self.teach_batch
                row, end = 0, table.row_end
                while row < end:
                    # a free row costs a quarter of a live one or less (an eighth
                    # with the generated encoder; about as much, 0.02 us, with the
                    # compiled one): bounded steps even in a table of free rows
                    stop = min(end, row + 4 * batch)
                    start = row
                    data, row, previous, count = teach(row, stop, batch, timed, previous)
                    yield data, max(count, (row - start) // 4)
                continue
            for entry in table.entries():
                row = entry.row
                key = entry.key
                if table.lookup(key) != row:
                    continue  # expired or purged since the walk started
                update_id = entry.update_id
                implicit = previous is not None and update_id == (previous + 1) & MASK32
                expire = entry.expire_in() if timed else None
                previous = update_id
                data = encoder.encode_entry(None if implicit else update_id, expire, key, entry.wire_values())
                yield data, 1
        # issue 6: hand over even when not synchronised, but say so with PARTIAL
        yield encoder.encode(m.ResyncFinished() if self.synced else m.ResyncPartial()), 1

    # ------------------------------------------------------------------ sending
    def _service_link(self, link: Link, now: int) -> None:
        """Queue what ``link`` is owed: ACKs, teach batches, incremental pushes, heartbeat."""
        session = link.session
        if link.should_close or not session.established:
            if session.pending_output:
                self._wake(link)
            return
        self._send_acks(link)
        if not link.paused and session.pending_output < MAX_PENDING_OUTPUT:
            budget = self.max_updates
            if link.teach is not None:
                sent = 0
                for chunk, count in link.teach:
                    session.send_raw(chunk)
                    sent += count
                    if sent >= self.teach_batch:
                        break
                else:
                    link.teach = None
                    link.awaiting_confirm = True
                link.last_push_ms = now
                if self.stopping and link.peer.is_local:
                    # a hand-over is bounded by its progress, not by its size
                    self.handover_deadline_ms = now + HANDOVER_MS
            elif self._may_push(link):
                if self._push(link, budget):
                    link.last_push_ms = now
        peer = link.peer
        if (
            not peer.is_local
            and link.teach is None
            and not link.awaiting_confirm
            and _s32(now - link.last_push_ms) >= HEARTBEAT_MS
        ):
            session.send(m.Heartbeat())
            peer.tx_heartbeats += 1
            link.last_push_ms = now
        if session.pending_output:
            self._wake(link)

    def _send_acks(self, link: Link) -> None:
        """One ACK per table whose last received id was not acked yet."""
        for remote_id, last_get in link.rx_last_get.items():
            if link.rx_last_acked.get(remote_id) != last_get:
                link.rx_last_acked[remote_id] = last_get
                link.session.send(m.Ack(remote_id, last_get))
                shared = link.remote_tables.get(remote_id)
                if shared is not None:
                    link.peer.cursors[shared.table_id].last_acked = last_get

    def _may_push(self, link: Link) -> bool:
        return not link.learning and not link.awaiting_confirm and not link.peer.is_local

    def _has_pending(self, link: Link) -> bool:
        cursors = link.peer.cursors
        return any(cursors[t.table_id].last_pushed != t.table.local_update for t in self.tables)

    def _push(self, link: Link, budget: int) -> int:
        """Push local changes the peer lacks, at most ``budget`` updates; returns how many."""
        session = link.session
        encoder = session.encoder
        sent = 0
        count = len(self.tables)
        # round robin, continuing with the table used last (no DEFINE needed for it)
        start = link.send_table - 1 if link.send_table is not None else 0
        for step in range(count):
            shared = self.tables[(start + step) % count]
            table = shared.table
            cursor = link.peer.cursors[shared.table_id]
            if cursor.last_pushed == table.local_update:
                continue
            if link.send_table != shared.table_id:
                session.send_raw(encoder.encode(shared.define))
                link.send_table = shared.table_id
            walk = link.walks.get(shared.table_id)
            if walk is None or walk[1] != cursor.last_pushed:
                walk = (table.updates_after(cursor.last_pushed), cursor.last_pushed)
            iterator = walk[0]
            previous = None
            exhausted = True
            fast = _wire_encoder(table)
            now = table.now_tick() if fast is not None else 0
            for update_id, entry in iterator:
                implicit = previous is not None and update_id == (previous + 1) & MASK32
                if fast is not None:
                    session.send_raw(fast(None if implicit else update_id, None, now, entry.row))
                    previous = cursor.last_pushed = update_id
                    sent += 1
                    if sent >= budget:
                        exhausted = False
                        break
                    continue
                session.send_raw(
                    encoder.encode_entry(
                        None if implicit else update_id, None, entry.key, entry.wire_values()
                    )
                )
                previous = cursor.last_pushed = update_id
                sent += 1
                if sent >= budget:
                    exhausted = False
                    break
            if exhausted:
                link.walks.pop(shared.table_id, None)
            else:
                link.walks[shared.table_id] = (iterator, cursor.last_pushed)
            if _s32(cursor.last_pushed - table.commit_update) > 0:
                table.commit_update = cursor.last_pushed
            if sent >= budget:
                break
        return sent

    # ------------------------------------------------------------------ timers
    def tick(self) -> None:
        """Run what is due: resync and hand-over timers, liveness, pushes, heartbeats."""
        now = self.now()
        if self.resync_deadline_ms is not None and _s32(now - self.resync_deadline_ms) >= 0:
            self._resync_timeout(now)
        if self.stopping and not self.handover_done and _s32(now - self.handover_deadline_ms) >= 0:
            self.handover_done = True
            for link in list(self.links):
                if link.peer is not None and link.peer.is_local:
                    self._kill(link, "hand-over timed out")
        for link in list(self.links):
            if link.should_close:
                continue
            if not link.session.established and _s32(now - link.created_ms) >= HANDSHAKE_MS:
                self._kill(link, "no handshake within 5 s")  # HAProxy's peers timeouts
                continue
            if (
                link.session.established
                and link.alive_deadline_ms is not None
                and not link.peer.is_local
                and _s32(now - link.alive_deadline_ms) >= 0
            ):
                if link.rx_since_check or self._has_pending(link):
                    link.rx_since_check = False
                    link.alive_deadline_ms = now + LIVENESS_MS
                    link.peer.reconnect_at_ms = now + LIVENESS_MS
                else:
                    peer = link.peer
                    self._kill(link, "peer silent for 5 s")
                    peer.next_dial_ms = now + self._jitter()
                    continue
            self._service_link(link, now)

    def _local_phase_over(self, now: int) -> None:
        """No (complete) table from an old local process: learn from remote peers."""
        self.local_done = True
        if self.source is not None and self.source.peer.is_local:
            self.source.learning = False
            self.source = None
        self.resync_deadline_ms = now + RESYNC_MS
        for peer in self.remote_peers():  # issue 6: dial remote peers only now
            if peer.next_dial_ms is None or _s32(peer.next_dial_ms - now) < 0:
                peer.next_dial_ms = now
        for link in self.links:
            self._maybe_request_resync(link)

    def _resync_timeout(self, now: int) -> None:
        if self.synced:
            self.resync_deadline_ms = None
        elif not self.local_done:
            source = self.source
            if source is not None and source.peer.is_local and source.rx_since_check:
                # the old process is teaching us and its lesson moved in the last 5 s:
                # wait for its end (HAProxy does not give up an assigned lesson either),
                # so that remote peers come only after the hand-over (issue 6); a
                # lesson silent for 5 s is given up below
                source.rx_since_check = False
                self.resync_deadline_ms = now + RESYNC_MS
            else:
                self._local_phase_over(now)
        elif not self.remote_done:
            if self.source is None:
                self.remote_done = True
                self.resync_deadline_ms = None
            else:
                self.resync_deadline_ms = now + RESYNC_MS

    def next_deadline(self) -> float | None:
        """When `tick` must run next, in the clock's seconds (None: nothing scheduled)."""
        now = self.now()
        candidates: list[int] = []
        if self.resync_deadline_ms is not None:
            candidates.append(self.resync_deadline_ms)
        if self.stopping and not self.handover_done and self.handover_deadline_ms is not None:
            candidates.append(self.handover_deadline_ms)
        for peer in self.peers.values():
            if peer.link is None and not peer.dialing and peer.next_dial_ms is not None:
                if (peer.is_local and self.stopping and not self.handover_done) or (
                    not peer.is_local and not peer.gave_up and self.local_done and not self.stopping
                ):
                    candidates.append(peer.next_dial_ms)
        for link in self.links:
            if link.should_close:
                continue
            if not link.session.established:
                candidates.append(link.created_ms + HANDSHAKE_MS)
                continue
            if not link.paused and (
                link.teach is not None or (self._may_push(link) and self._has_pending(link))
            ):
                candidates.append(now)
            if not link.peer.is_local:
                if link.alive_deadline_ms is not None:
                    candidates.append(link.alive_deadline_ms)
                if link.teach is None and not link.awaiting_confirm:
                    candidates.append(link.last_push_ms + HEARTBEAT_MS)
        if not candidates:
            return None
        earliest = min(candidates, key=lambda t: _s32(t - now))
        return max(_s32(earliest - now), 0) / 1000.0 + self.clock.seconds()

    # ------------------------------------------------------------------ local changes and stop
    def begin_handover(self) -> None:
        """Stop replicating with remote peers and hand every table to the successor at
        the local peer address (the adapter dials `local_name` from `dials_due`)."""
        now = self.now()
        self.stopping = True
        self.handover_deadline_ms = now + HANDOVER_MS
        for link in list(self.links):
            self._kill(link, "stopping")
        local = self.peers[self.local_name]
        local.next_dial_ms = now

    def close_all(self, reason: str = "shutting down") -> None:
        for link in list(self.links):
            self._kill(link, reason)

    # ------------------------------------------------------------------ show peers
    def show_peers(self, section: str, addresses: dict[str, str] | None = None) -> list[str]:
        """The section's part of the stats socket's ``show peers``, in HAProxy 2.6's
        layout (object addresses are Python ids; flags: 0x1 local resync done, 0x2
        remote resync done, 0x4 a resync source is assigned)."""
        now = self.now()
        addresses = addresses or {}
        flags = (1 if self.local_done else 0) | (2 if self.remote_done else 0) | (4 if self.source else 0)
        lines = [
            f"0x{id(self):x}: id={section} disabled=0 flags=0x{flags:x} "
            f"resync_timeout={_human(self.resync_deadline_ms, now)} task_calls=0"
        ]
        for peer in sorted(self.peers.values(), key=lambda p: (not p.is_local, p.name)):
            link = peer.link if peer.link is not None and not peer.link.should_close else None
            active = "active" if link is not None and link.session.established else "inactive"
            kind = "local" if peer.is_local else "remote"
            since = (
                "<NEVER>" if peer.last_handshake_ms is None else f"{_ms_text(now - peer.last_handshake_ms)}"
            )
            reconnect = _human(peer.next_dial_ms if link is None else peer.reconnect_at_ms, now)
            heartbeat = _human(link.last_push_ms + HEARTBEAT_MS, now) if link is not None else "<NEVER>"
            lines.append(
                f"  0x{id(peer):x}: id={peer.name}({kind},{active}) addr={addresses.get(peer.name, '-')} "
                f"last_status={peer.last_status} last_hdshk={since}"
            )
            lines.append(
                f"        reconnect={reconnect} heartbeat={heartbeat} confirm=0 tx_hbt={peer.tx_heartbeats} "
                f"rx_hbt={peer.rx_heartbeats} no_hbt=0 new_conn={peer.new_conn} proto_err={peer.proto_err} "
                f"coll={peer.collisions}"
            )
            lines.append("        flags=0x0" + (" state=EST" if active == "active" else ""))
            lines.append("        shared tables:")
            for shared in self.tables:
                cursor = peer.cursors[shared.table_id]
                remote_id, remote_data = 0, 0
                if link is not None:
                    for rid, mapped in link.remote_tables.items():
                        if mapped is shared:
                            remote_id = rid
                            define = link.session.decoder.defines.get(rid)
                            remote_data = define.data_types if define is not None else 0
                table = shared.table
                lines.append(
                    f"          0x{id(cursor):x} local_id={shared.table_id} remote_id={remote_id} flags=0x0 "
                    f"remote_data=0x{remote_data:x}"
                )
                lines.append(
                    f"              last_acked={cursor.last_acked} last_pushed={cursor.last_pushed} "
                    f"last_get={cursor.last_get} teaching_origin={cursor.teaching_origin} update={cursor.acked}"
                )
                lines.append(
                    f"              table:0x{id(table):x} id={table.spec.name} update={table.update} "
                    f"localupdate={table.local_update} commitupdate={table.commit_update} refcnt=1"
                )
            lines.append('        Dictionary cache not dumped (use "show peers dict")')
        return lines


def _ms_text(ms: int) -> str:
    """HAProxy's human time: 12s, 1m5s, 2h3m, 1d4h; below a second, <1s... as ``Nms``."""
    if ms < 1000:
        return f"{ms}ms"
    secs = ms // 1000
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _human(deadline_ms: int | None, now: int) -> str:
    if deadline_ms is None:
        return "<NEVER>"
    left = _s32(deadline_ms - now)
    return "<PAST>" if left <= 0 else _ms_text(left)
