"""Owns server selection: the runtime state of each server and HAProxy 2.6's balancing algorithms.

`ServerState` is the one mutable record per configured server: whether health checks
say it is up, how many connections the data path holds on it.  `make_balancer`
builds a `Balancer` for a backend's ``balance`` line; ``Balancer.pick(txn, src,
exclude)`` returns the server for one request or connection, or None when no server
is usable (the caller answers 503).

Rules shared by every algorithm, as HAProxy applies them:

* a server is *usable* when it is up, has a weight above zero, is not in ``exclude``
  (servers already tried by a retry) and has not reached its ``maxconn``;
* backup servers are considered only when no active server is up; then the first
  backup (lowest id) takes everything, or all of them share by weight with
  ``option allbackups``;
* hash-based algorithms (source, uri, url_param, hdr) fall back to round robin when
  the key is missing; map-based hashing (the default ``hash-type``) divides the
  hash by the total weight of the running servers, ``hash-type consistent`` uses a
  ring so that few keys move when a server goes down.

Pure: no Twisted, randomness comes in as a `random.Random`.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from minilb.config.model import Address, Balance, Server, TLSOptions

if TYPE_CHECKING:
    from minilb.rules.txn import Txn


_NO_TLS = TLSOptions()


class ServerState:
    """A configured server at run time.

    ``up`` is driven by health checks (servers without ``check`` are up unless
    ``disabled``); ``cur_conns`` is incremented and decremented by the data path.
    Setting ``up`` or ``weight`` bumps `ServerState.generation`, which tells the
    balancers to recompute which servers take traffic (instead of re-scanning the
    farm on every request).
    """

    #: incremented whenever any server's ``up`` or ``weight`` changes
    generation = 0

    __slots__ = (
        "name",
        "address",
        "_weight",
        "backup",
        "maxconn",
        "_up",
        "cur_conns",
        "tls",
        "model",
        "id",
        "disabled",
        "total_conns",
        "_rr_current",
        "_last_pick",
    )

    def __init__(
        self,
        name: str,
        address: Address | None,
        weight: int = 1,
        backup: bool = False,
        maxconn: int | None = None,
        up: bool = True,
        tls: TLSOptions = _NO_TLS,
        model: Server | None = None,
        id: int = 0,
        disabled: bool = False,
    ):
        self.name = name
        self.address = address
        self._weight = weight
        self.backup = backup
        self.maxconn = maxconn
        self._up = up and not disabled
        self.cur_conns = 0
        self.total_conns = 0
        self.tls = tls
        self.model = model
        self.id = id
        self.disabled = disabled
        self._rr_current = 0  # smooth weighted round robin accumulator
        self._last_pick = 0  # pick sequence number, for round robin among equals

    @classmethod
    def from_model(cls, server: Server, position: int = 0) -> ServerState:
        """The run-time state of a ``server`` line; ``position`` (1-based) stands in
        for the numeric id when validation did not assign one."""
        return cls(
            name=server.name,
            address=server.address,
            weight=server.weight,
            backup=server.backup,
            maxconn=server.maxconn,
            up=not server.disabled,
            tls=server.tls,
            model=server,
            id=server.id if server.id is not None else position,
            disabled=server.disabled,
        )

    @property
    def up(self) -> bool:
        return self._up

    @up.setter
    def up(self, value: bool) -> None:
        if value != self._up:
            self._up = value
            ServerState.generation += 1

    @property
    def weight(self) -> int:
        return self._weight

    @weight.setter
    def weight(self, value: int) -> None:
        if value != self._weight:
            self._weight = value
            ServerState.generation += 1

    @property
    def full(self) -> bool:
        """True when the server holds ``maxconn`` connections already."""
        return self.maxconn is not None and self.maxconn > 0 and self.cur_conns >= self.maxconn

    def __repr__(self) -> str:
        state = "UP" if self.up else "DOWN"
        return f"<ServerState {self.name} {state} w={self.weight} conns={self.cur_conns}>"


# --------------------------------------------------------------------------- hashing


def sdbm_hash(data: bytes) -> int:
    """HAProxy's default key hash (sdbm), 32 bits: stable across processes and runs."""
    h = 0
    for c in data:
        h = (c + (h << 6) + (h << 16) - h) & 0xFFFFFFFF
    return h


def avalanche(h: int) -> int:
    """Spread a 32-bit hash over the whole range (Thomas Wang's integer mix), so that
    consecutive keys land far apart on a consistent-hash ring."""
    h = (h + 0x7ED55D16 + (h << 12)) & 0xFFFFFFFF
    h = (h ^ 0xC761C23C ^ (h >> 19)) & 0xFFFFFFFF
    h = (h + 0x165667B1 + (h << 5)) & 0xFFFFFFFF
    h = ((h + 0xD3A2646C) ^ (h << 9)) & 0xFFFFFFFF
    h = (h + 0xFD7046C5 + (h << 3)) & 0xFFFFFFFF
    h = (h ^ 0xB55A4F09 ^ (h >> 16)) & 0xFFFFFFFF
    return h


def source_key(src: str) -> bytes:
    """The bytes hashed for ``balance source``: the packed address when ``src`` is an IP."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, src)
        except OSError:
            pass
    return src.encode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=65536)
def source_hash(src: str) -> int:
    return sdbm_hash(source_key(src))


def uri_key(uri: bytes, whole: bool = False, length: int | None = None, depth: int | None = None) -> bytes:
    """The part of a request URI that ``balance uri [whole] [len N] [depth N]`` hashes."""
    if not whole:
        q = uri.find(b"?")
        if q >= 0:
            uri = uri[:q]
    if depth is not None:
        slashes = 0
        for i, c in enumerate(uri):
            if c == 0x2F:  # "/"
                slashes += 1
                if slashes > depth:
                    uri = uri[:i]
                    break
    if length is not None:
        uri = uri[:length]
    return uri


def url_param_value(query: str | None, name: str) -> str | None:
    """The value of ``name=`` in a query string, or None when absent or empty."""
    if not query:
        return None
    prefix = name + "="
    for part in query.split("&"):
        if part.startswith(prefix):
            value = part[len(prefix) :]
            return value or None
    return None


def domain_only(host: bytes) -> bytes:
    """``use_domain_only``: the main domain label of a host name (``haproxy.1wt.eu`` → ``1wt``)."""
    colon = host.rfind(b":")
    if colon >= 0 and host.find(b"]") < colon:
        host = host[:colon]
    labels = [label for label in host.split(b".") if label]
    if len(labels) >= 2:
        return labels[-2]
    return labels[0] if labels else b""


# --------------------------------------------------------------------------- balancers


class Balancer:
    """Picks a server for one request.  Subclasses implement `_choose` over the
    servers of the current tier (actives, or backups when no active is up)."""

    def __init__(self, servers: Sequence[ServerState], rng: random.Random, allbackups: bool = False):
        self.servers = list(servers)
        self.rng = rng
        self.allbackups = allbackups
        self._seq = 0
        by_id = sorted(self.servers, key=lambda s: s.id)
        self._actives = [s for s in by_id if not s.backup]
        self._backups = [s for s in by_id if s.backup]
        self._generation = -1
        self._tier: list[ServerState] = []
        self._tier_limited = False  # some server of the tier has a maxconn

    def candidates(self) -> list[ServerState]:
        """The tier that takes traffic now: active servers that are up, else backups."""
        if self._generation != ServerState.generation:
            self._refresh()
        return self._tier

    def _refresh(self) -> None:
        self._generation = ServerState.generation
        tier = [s for s in self._actives if s._up and s._weight > 0]
        if not tier:
            tier = [s for s in self._backups if s._up and s._weight > 0]
            if tier and not self.allbackups:
                tier = tier[:1]
        self._tier = tier
        self._tier_limited = any(s.maxconn for s in tier)

    def pick(self, txn: Txn | None, src: str, exclude: frozenset[str] = frozenset()) -> ServerState | None:
        if self._generation != ServerState.generation:
            self._refresh()
        tier = self._tier
        if not tier:
            return None
        if exclude or self._tier_limited:
            usable = [s for s in tier if not s.full and s.name not in exclude]
            if not usable:
                return None
        else:
            usable = tier
        chosen = self._choose(tier, usable, txn, src)
        if chosen is not None:
            self._seq += 1
            chosen._last_pick = self._seq
        return chosen

    def _choose(
        self, tier: list[ServerState], usable: list[ServerState], txn: Txn | None, src: str
    ) -> ServerState | None:
        raise NotImplementedError


class RoundRobin(Balancer):
    """roundrobin / static-rr: smooth weighted round robin over the usable servers
    (each pick adds every weight to its server's credit and takes the richest)."""

    def _choose(self, tier, usable, txn, src):
        return smooth_weighted_pick(usable)


def smooth_weighted_pick(usable: list[ServerState]) -> ServerState:
    total = 0
    best: ServerState | None = None
    for s in usable:
        w = s._weight
        s._rr_current += w
        total += w
        if best is None or s._rr_current > best._rr_current:
            best = s
    assert best is not None
    best._rr_current -= total
    return best


class LeastConn(Balancer):
    """leastconn: lowest connections per weight; round robin among equal loads."""

    def _choose(self, tier, usable, txn, src):
        return min(usable, key=lambda s: ((s.cur_conns + 1) / s._weight, s._last_pick))


class First(Balancer):
    """first: the lowest id with a free connection slot; weights are ignored."""

    def _choose(self, tier, usable, txn, src):
        return usable[0]  # tiers are kept in id order


class RandomDraws(Balancer):
    """random(N): N weighted random draws, the least loaded of them wins."""

    def __init__(self, servers, rng, allbackups=False, draws: int = 2):
        super().__init__(servers, rng, allbackups)
        self.draws = max(1, draws)
        self._cum_for: list[ServerState] | None = None
        self._cum: list[int] = []

    def _choose(self, tier, usable, txn, src):
        if usable is tier:
            if self._cum_for is not tier:
                self._cum_for = tier
                self._cum = list(itertools.accumulate(s._weight for s in tier))
            cum = self._cum
        else:
            cum = list(itertools.accumulate(s._weight for s in usable))
        total = cum[-1]
        rand = self.rng.random
        best = usable[bisect.bisect_right(cum, rand() * total)]
        for _ in range(self.draws - 1):
            s = usable[bisect.bisect_right(cum, rand() * total)]
            if s.cur_conns * best._weight < best.cur_conns * s._weight:
                best = s
        return best


class HashBalancer(Balancer):
    """Hash-based algorithms: a key from the request picks a server; without a key,
    round robin.  Map-based by default, a consistent ring with ``hash-type consistent``."""

    def __init__(self, servers, rng, allbackups=False, consistent: bool = False):
        super().__init__(servers, rng, allbackups)
        self.consistent = consistent
        self._ring_for: tuple[str, ...] | None = None
        self._ring_points: list[int] = []
        self._ring_servers: list[ServerState] = []

    def key(self, txn: Txn | None, src: str) -> bytes | None:
        raise NotImplementedError

    def _choose(self, tier, usable, txn, src):
        key = self.key(txn, src)
        if key is None:
            return smooth_weighted_pick(usable)
        h = sdbm_hash(key)
        if self.consistent:
            return self._ring_pick(tier, usable, avalanche(h))
        return self._map_pick(tier, usable, h)

    @staticmethod
    def _map_pick(tier, usable, h):
        # the map holds every running server `weight` times; walk on when the
        # designated server cannot take more (full, or already tried).
        total = sum(s._weight for s in tier)
        slot = h % total
        start = 0
        for i, s in enumerate(tier):
            if slot < s._weight:
                start = i
                break
            slot -= s._weight
        if usable is tier:
            return tier[start]
        n = len(tier)
        for step in range(n):
            s = tier[(start + step) % n]
            if s in usable:
                return s
        return None

    def _ring_pick(self, tier, usable, h):
        names = tuple(s.name for s in tier)
        if names != self._ring_for:
            points: list[tuple[int, int, ServerState]] = []
            for s in tier:
                for replica in range(s.weight * 16):
                    p = avalanche(sdbm_hash(f"{s.id}-{s.name}-{replica}".encode()))
                    points.append((p, s.id, s))
            points.sort(key=lambda t: (t[0], t[1]))
            self._ring_points = [p for p, _, _ in points]
            self._ring_servers = [s for _, _, s in points]
            self._ring_for = names
        usable_names = {s.name for s in usable}
        n = len(self._ring_points)
        i = bisect.bisect_left(self._ring_points, h)
        for step in range(n):
            s = self._ring_servers[(i + step) % n]
            if s.name in usable_names:
                return s
        return None


class SourceHash(HashBalancer):
    def key(self, txn, src):
        return source_key(src) if src else None

    def _choose(self, tier, usable, txn, src):
        if not src:
            return smooth_weighted_pick(usable)
        h = source_hash(src)
        if self.consistent:
            return self._ring_pick(tier, usable, avalanche(h))
        return self._map_pick(tier, usable, h)


class UriHash(HashBalancer):
    def __init__(
        self, servers, rng, allbackups=False, consistent=False, whole=False, length=None, depth=None
    ):
        super().__init__(servers, rng, allbackups, consistent)
        self.whole = whole
        self.length = length
        self.depth = depth

    def key(self, txn, src):
        if txn is None:
            return None
        return uri_key(txn.uri, self.whole, self.length, self.depth)


class UrlParamHash(HashBalancer):
    def __init__(self, servers, rng, allbackups=False, consistent=False, param: str = ""):
        super().__init__(servers, rng, allbackups, consistent)
        self.param = param

    def key(self, txn, src):
        if txn is None:
            return None
        value = url_param_value(txn.query, self.param)
        return value.encode("utf-8", "surrogateescape") if value is not None else None


class HeaderHash(HashBalancer):
    def __init__(self, servers, rng, allbackups=False, consistent=False, header: str = "", domain=False):
        super().__init__(servers, rng, allbackups, consistent)
        self.header = header.lower().encode("ascii")
        self.domain = domain

    def key(self, txn, src):
        if txn is None:
            return None
        value = txn.header(self.header)
        if value is not None:
            value = value.strip()
        if not value:
            return None
        if self.domain:
            value = domain_only(value)
            if not value:
                return None
        return value


def _split_call(text: str) -> tuple[str, str | None]:
    """``hdr(host)`` → (``hdr``, ``host``); ``random`` → (``random``, None)."""
    if text.endswith(")") and "(" in text:
        name, _, arg = text[:-1].partition("(")
        return name, arg
    return text, None


def _option_int(options: Sequence[str], name: str) -> int | None:
    words = list(options)
    for i, w in enumerate(words):
        if w == name and i + 1 < len(words):
            try:
                return int(words[i + 1])
            except ValueError:
                return None
    return None


def make_balancer(
    balance: Balance,
    servers: list[ServerState],
    rng: random.Random,
    allbackups: bool = False,
    hash_type: Sequence[str] = (),
) -> Balancer:
    """The balancer for a backend's ``balance`` line.  ``allbackups`` is
    ``option allbackups``; ``hash_type`` the words of ``hash-type``."""
    algorithm, inline_arg = _split_call(balance.algorithm)
    arg = balance.arg if balance.arg is not None else inline_arg
    consistent = "consistent" in hash_type
    if algorithm in ("roundrobin", "static-rr"):
        return RoundRobin(servers, rng, allbackups)
    if algorithm == "leastconn":
        return LeastConn(servers, rng, allbackups)
    if algorithm == "first":
        return First(servers, rng, allbackups)
    if algorithm == "random":
        draws = int(arg) if arg and arg.isdigit() else 2
        return RandomDraws(servers, rng, allbackups, draws=draws)
    if algorithm == "source":
        return SourceHash(servers, rng, allbackups, consistent)
    if algorithm == "uri":
        return UriHash(
            servers,
            rng,
            allbackups,
            consistent,
            whole="whole" in balance.options,
            length=_option_int(balance.options, "len"),
            depth=_option_int(balance.options, "depth"),
        )
    if algorithm == "url_param":
        return UrlParamHash(servers, rng, allbackups, consistent, param=arg or "")
    if algorithm == "hdr":
        return HeaderHash(
            servers,
            rng,
            allbackups,
            consistent,
            header=arg or "host",
            domain="use_domain_only" in balance.options,
        )
    # hash <expr>, rdp-cookie and anything else minilb does not implement: round robin
    # (the config loader warns about them).
    return RoundRobin(servers, rng, allbackups)
