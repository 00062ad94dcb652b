"""Test helpers of the peers area: the captured HAProxy streams and their README listings.

`captured_streams()` reads ../shared/peers/vectors/README.md (the decoded listing written
from the captures) into `Stream` objects: the ``.hex`` file's bytes plus, per message, its
offset, its bytes (the README's field groups joined) and its decoded fields as a dict.
The README is test *data* here; none of the scripts under vectors/ is used.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from minilb.config.model import StoreItem, TableSpec
from minilb.errors import BUILTIN
from tests.conftest import SHARED

VECTORS = SHARED / "peers" / "vectors"
README = VECTORS / "README.md"


@attrs.frozen
class Row:
    """One message of a README listing."""

    offset: int
    raw: bytes  # the README's byte groups joined
    groups: tuple[str, ...]  # the byte groups as written
    kind: str  # e.g. "STICK-TABLE UPDATE", "HELLO (3 text lines)", "CONTROL HEARTBEAT"
    fields: dict  # decoded fields, "k=v" pairs of the listing (values as text)
    text: str  # the decoded column as written


@attrs.frozen
class Stream:
    experiment: str  # directory name, e.g. "exp1-ip-table"
    filename: str
    rows: tuple[Row, ...]

    @property
    def path(self) -> Path:
        return VECTORS / self.experiment / "capture" / self.filename

    @property
    def id(self) -> str:
        return f"{self.experiment}/{self.filename}"

    @property
    def is_client(self) -> bool:
        return "_client_" in self.filename

    def data(self) -> bytes:
        return bytes.fromhex("".join(self.path.read_text().split()))


_EXP = re.compile(r"^## (exp\w+) .*\(`([^`]+)/`\)")
_FILE = re.compile(r"^`([^`]+\.hex)`\s*$")
_ROW = re.compile(r"^\| [0-9.]+ \| (\d+) \| `([^`]*)` \| (.*) \|\s*$")


def _fields(text: str) -> tuple[str, dict]:
    kind, _, rest = text.partition(":")
    fields: dict = {}
    for item in rest.split(";"):
        item = item.strip()
        if "=" not in item or item.startswith("(no id field"):
            if item.startswith("(no id field"):
                fields["implicit_id"] = item.rsplit("=", 1)[1].strip(" )")
            continue
        key, _, value = item.partition("=")
        key = key.strip()
        if key == "param type":
            fields.setdefault("params", []).append({"type": value.split()[0]})
            continue
        if key in ("n", "period") and fields.get("params") and key not in fields["params"][-1]:
            fields["params"][-1][key] = value
            continue
        fields[key] = value.strip()
    return kind.strip(), fields


def captured_streams() -> list[Stream]:
    """Every stream listed in the README, in README order."""
    streams: list[Stream] = []
    experiment = None
    filename = None
    rows: list[Row] = []

    def flush() -> None:
        if filename is not None and rows:
            streams.append(Stream(experiment, filename, tuple(rows)))

    for line in README.read_text().splitlines():
        if match := _EXP.match(line):
            flush()
            experiment, filename, rows = match.group(2), None, []
        elif match := _FILE.match(line):
            flush()
            filename, rows = match.group(1), []
        elif filename is not None and (match := _ROW.match(line)):
            groups = tuple(match.group(2).split())
            text = match.group(3).strip()
            kind, fields = _fields(text)
            rows.append(Row(int(match.group(1)), bytes.fromhex("".join(groups)), groups, kind, fields, text))
    flush()
    return streams


def split_handshake(data: bytes, is_client: bool) -> tuple[bytes, bytes]:
    """(handshake text, binary messages) of a captured direction: 3 lines from a client,
    1 status line from a server."""
    pos = 0
    for _ in range(3 if is_client else 1):
        pos = data.index(b"\n", pos) + 1
    return data[:pos], data[pos:]


# ----------------------------------------------------------------------------------------
# A stick table stand-in with the interface `minilb.peers.sync` uses, and a harness
# joining several `PeersSync` back to back on one task.Clock.
# ----------------------------------------------------------------------------------------

MASK32 = 0xFFFFFFFF
HALF32 = 0x80000000


def _s32(value: int) -> int:
    value &= MASK32
    return value - (1 << 32) if value & HALF32 else value


class FakeEntry:
    def __init__(self, table: FakeTable, row: int):
        self.table = table
        self.row = row

    @property
    def key(self):
        return self.table._keys[self.row]

    @property
    def update_id(self) -> int:
        return self.table._ids[self.row]

    def expire_in(self) -> int:
        exp = self.table._exp[self.row]
        return max(exp - self.table.now(), 0) if exp else 0

    def wire_values(self) -> dict:
        return self.table.wire_values(self.row)


class FakeTable:
    """Minimal stick table: keys in stored form (int for ip/integer, bytes otherwise),
    values by data-type name, rates kept as (tick, curr, prev) on the table's clock."""

    def __init__(self, spec, clock):
        from minilb.stick.datatypes import BY_NAME

        self.spec = spec
        self.clock = clock
        self.expire = spec.expire or 0
        self.kinds = {it.name: BY_NAME[it.name] for it in spec.store}
        self.items = {it.name: it for it in spec.store}
        self.update = self.local_update = self.commit_update = 0
        self._index: dict = {}
        self._keys: list = []
        self._ids: list[int] = []
        self._remote: list[bool] = []
        self._exp: list[int] = []
        self._vals: list[dict] = []
        self.on_local_update: list = []

    def now(self) -> int:
        return int(self.clock.seconds() * 1000)

    def normalize_key(self, key):
        if self.spec.key_type == "string":
            return bytes(key)[: self.spec.key_len - 1]
        return key

    def lookup(self, key):
        return self._index.get(key)

    def _row(self, key) -> int:
        row = self._index.get(key)
        if row is None:
            row = len(self._keys)
            self._index[key] = row
            self._keys.append(key)
            self._ids.append(0)
            self._remote.append(False)
            self._exp.append(0)
            self._vals.append({})
        return row

    def set_local(self, key, **values) -> int:
        """A local change: store the values (rates given as curr counts set now) and renumber."""
        row = self._row(key)
        for name, value in values.items():
            if self.kinds[name].kind == "rate":
                value = (self.now(), value, 0)
            self._vals[row][name] = value
        if self.expire:
            self._exp[row] = self.now() + self.expire
        self.update = (self.update + 1) & MASK32
        self.local_update = self.update
        self._ids[row] = self.update
        self._remote[row] = False
        for callback in self.on_local_update:
            callback(self)
        return self.update

    def get(self, key, name):
        row = self._index[key]
        value = self._vals[row].get(name)
        if value is not None and self.kinds[name].kind == "rate":
            return value[1], value[2], (self.now() - value[0]) & MASK32
        return value

    def wire_values(self, row: int) -> dict:
        out = {}
        for name, dt in sorted(self.kinds.items(), key=lambda kv: kv[1].bit):
            value = self._vals[row].get(name)
            if dt.kind == "rate":
                tick, curr, prev = value or (0, 0, 0)
                value = ((self.now() - tick) & MASK32, curr, prev)
            out[name] = value
        return out

    def apply_remote(self, key, values: dict, expire_ms=None):
        row = self._row(key)
        for name, value in values.items():
            dt = self.kinds.get(name)
            if dt is None or dt.local:
                continue
            if dt.kind == "rate":
                age, curr, prev = value
                value = ((self.now() - age) & MASK32 & ~1, curr, prev)
            self._vals[row][name] = value
        timeout = self.expire if expire_ms is None else expire_ms
        self._exp[row] = self.now() + timeout if timeout else 0
        if not self._ids[row]:
            self.update = (self.update + 1) & MASK32
            self._ids[row] = (self.update + HALF32) & MASK32
            self._remote[row] = True
        return row

    def updates_after(self, update_id: int):
        rows = [
            r
            for r in range(len(self._keys))
            if self._ids[r]
            and not self._remote[r]
            and _s32(self._ids[r] - update_id) > 0
            and _s32(self._ids[r] - self.local_update) <= 0
        ]
        rows.sort(key=lambda r: _s32(self._ids[r] - update_id))
        for r in rows:
            yield self._ids[r], FakeEntry(self, r)

    def entries(self):
        for row in list(self._index.values()):
            yield FakeEntry(self, row)


class PeerNet:
    """Several `PeersSync` of one section joined in memory: dials reach the target's
    listener when it is `up`; `pump()` moves bytes until nothing moves; `run(seconds)`
    advances the clock deadline by deadline.  Every connection is kept in `conns` with
    the bytes each side sent."""

    def __init__(self, clock):
        self.clock = clock
        self.syncs: dict = {}
        self.up: set = set()
        self.conns: list[Conn] = []
        self.blackholed: set = set()  # (sender, receiver) whose bytes are dropped
        self.routes: dict = {}  # (dialer, target) -> name of the sync listening there

    def add(self, name: str, sync, up: bool = True):
        self.syncs[name] = sync
        if up:
            self.up.add(name)
        return sync

    def open_conns(self) -> list[Conn]:
        return [c for c in self.conns if c.open]

    def pump(self, rounds: int = 500) -> None:
        for _ in range(rounds):
            moved = False
            for name, sync in list(self.syncs.items()):
                for target in sync.dials_due():
                    dest = self.routes.get((name, target), target)
                    if dest not in self.up:
                        sync.connection_failed(target)
                        continue
                    link = sync.connection_made(target)
                    if link is None:
                        continue
                    other = self.syncs[dest]
                    self.conns.append(Conn(name, sync, link, dest, other, other.incoming()))
                    moved = True
            for conn in self.open_conns():
                moved |= conn.move(self.blackholed)
                if conn.a_link.should_close or conn.b_link.should_close:
                    conn.move(self.blackholed)
                    conn.open = False
                    conn.a.connection_lost(conn.a_link)
                    conn.b.connection_lost(conn.b_link)
                    moved = True
            if not moved:
                return
        raise AssertionError("peers did not settle")

    def run(self, seconds: float) -> None:
        end = self.clock.seconds() + seconds
        self.pump()
        stuck = 0
        while True:
            stuck += 1
            if stuck > 2000:
                raise AssertionError("next_deadline() keeps reporting work that tick() does not do")
            deadlines = [d for d in (s.next_deadline() for s in self.syncs.values()) if d is not None]
            upcoming = min(deadlines) if deadlines else None
            if upcoming is None or upcoming > end:
                self.clock.advance(max(end - self.clock.seconds(), 0))
                for sync in self.syncs.values():
                    sync.tick()
                self.pump()
                return
            if upcoming > self.clock.seconds():
                self.clock.advance(upcoming - self.clock.seconds())
                stuck = 0
            for sync in self.syncs.values():
                sync.tick()
            self.pump()

    def messages(self, sender: str, receiver: str) -> list:
        """Messages ``sender`` sent to ``receiver`` over every connection, in order."""
        out = []
        for conn in self.conns:
            out.extend(conn.messages(sender, receiver))
        return out


class Conn:
    """One in-memory connection: ``a`` dialed ``b``."""

    def __init__(self, a_name, a, a_link, b_name, b, b_link):
        self.a_name, self.a, self.a_link = a_name, a, a_link
        self.b_name, self.b, self.b_link = b_name, b, b_link
        self.a_bytes = bytearray()
        self.b_bytes = bytearray()
        self.open = True

    def move(self, blackholed: set) -> bool:
        moved = False
        for _src, link, dst, dlink, buf, key in (
            (self.a, self.a_link, self.b, self.b_link, self.a_bytes, (self.a_name, self.b_name)),
            (self.b, self.b_link, self.a, self.a_link, self.b_bytes, (self.b_name, self.a_name)),
        ):
            data = link.data_to_send()
            if data and key not in blackholed:
                buf.extend(data)
                dst.data_received(dlink, data)
                moved = True
        return moved

    def bytes_from(self, name: str) -> bytes:
        return bytes(self.a_bytes if name == self.a_name else self.b_bytes)

    def messages(self, sender: str, receiver: str) -> list:
        from minilb.peers import codec

        if (sender, receiver) == (self.a_name, self.b_name):
            data, client = bytes(self.a_bytes), True
        elif (sender, receiver) == (self.b_name, self.a_name):
            data, client = bytes(self.b_bytes), False
        else:
            return []
        if data.count(b"\n") < (3 if client else 1):
            return []
        return codec.Decoder().feed(split_handshake(data, client)[1])


#: The `st_ip` table of the exp1 capture (hapA.cfg): ip keys, gpc0, conn_cnt,
#: http_req_cnt and http_req_rate(10s), expire 60s, replicated by `mypeers`.
ST_IP_SPEC = TableSpec(
    BUILTIN,
    "st_ip",
    "st_ip",
    "ip",
    4,
    1000,
    expire=60000,
    peers="mypeers",
    store=(
        StoreItem("gpc0"),
        StoreItem("conn_cnt"),
        StoreItem("http_req_cnt"),
        StoreItem("http_req_rate", period=10000),
    ),
)
