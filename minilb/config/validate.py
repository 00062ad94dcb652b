"""Owns the second pass over a parsed configuration: every name resolved once,
every cross-section problem reported in one run, ids assigned.

Checks (wording after ``haproxy -c`` 2.6.12): duplicate proxy names (both lines
cited), duplicate peers sections, unknown ``default_backend`` / ``use_backend``
targets (with a did-you-mean), an http frontend using a tcp backend, a frontend
without ``bind``, unknown ``stick-table peers`` sections, unknown tables named by
``track-sc*`` / ``stick`` rules, TLS servers that would verify without a CA file,
peers sections without the local peer (removed with a warning, as HAProxy does;
their tables stay, unreplicated, in `Config.local_tables`), a local peer with a TLS
``server`` line but a plain ``bind``.  Proxy and server ids are assigned as HAProxy
does when absent (the next free id, the counter advancing once per object in
declaration order).  Also as HAProxy: the global ``ssl-default-bind-*`` /
``ssl-default-server-*`` settings are merged into every TLS bind and server, and a
table used by ``stick`` rules stores ``server_id`` and ``server_key``.
"""

from __future__ import annotations

import re

import attrs

from minilb.config.context import ParseContext
from minilb.config.keywords import suggest
from minilb.config.model import Bind, Config, PeersSection, Proxy, Server, StoreItem, TLSOptions
from minilb.config.options import parse_tls_default_options, tls_line_problems, with_tls_defaults
from minilb.errors import SourceLocation

_TABLE_ACTION = re.compile(r"^(track-sc\d+|sc-[a-z0-9-]+\(.*\)|sc-[a-z0-9-]+)$")
_VERIFY_ALERT = (
    "verify is enabled by default but no CA file specified. If you're running on a LAN where you're certain "
    "to trust the server's certificate, please set an explicit 'verify none' statement on the 'server' line, "
    "or use 'ssl-server-verify none' in the global section to disable server-side verifications by default."
)


def _overlap(a: Proxy, b: Proxy) -> bool:
    return (a.is_frontend and b.is_frontend) or (a.is_backend and b.is_backend)


# haproxy prints this hint on continuation lines, as here
_MISSING_TIMEOUTS_HINT = (
    "\n   | While not properly invalid, you will certainly encounter various problems"
    "\n   | with such a configuration. To fix this, please ensure that all following"
    "\n   | timeouts are set to a non-zero value: 'client', 'connect', 'server'."
)


def _kind_word(p: Proxy) -> str:
    """HAProxy names a listen section "proxy" in its messages."""
    return "proxy" if p.kind == "listen" else p.kind


def _assign_ids(items, explicit_ids) -> list[int]:
    """HAProxy's scheme: a counter starting at 1 advances once per item; an item
    without an id takes the first free id at or above the counter."""
    used = {i for i in explicit_ids if i is not None}
    next_id = 1
    out = []
    for explicit in explicit_ids:
        if explicit is None:
            while next_id in used:
                next_id += 1
            out.append(next_id)
            used.add(next_id)
        else:
            out.append(explicit)
        next_id += 1
    return out


def validate(config: Config, ctx: ParseContext, peers_builders: dict | None = None) -> Config:
    alert, warn = ctx.alert, ctx.warn
    proxies = list(config.proxies)

    # duplicate names -----------------------------------------------------------
    for i, p in enumerate(proxies):
        for q in proxies[:i]:
            if q.name == p.name and _overlap(p, q):
                alert(
                    p.origin,
                    f"{_kind_word(p)} '{p.name}' has the same name as {_kind_word(q)} '{q.name}' declared at {q.origin}.",
                )
                break
    seen_peers: dict[str, PeersSection] = {}
    for s in config.peers:
        if s.name in seen_peers:
            alert(
                s.origin,
                f"peers section '{s.name}' has the same name as another peers section declared at "
                f"{seen_peers[s.name].origin}.",
            )
        else:
            seen_peers[s.name] = s

    _check_table_names(config, ctx)
    backends = {p.name: p for p in proxies if p.is_backend}
    tables = {p.stick_table.name for p in proxies if p.stick_table is not None}
    for s in config.peers:
        tables.update(t.name for t in s.tables)

    tls_defaults = _TLSDefaults(config, ctx)

    # peers sections: local peer, TLS consistency ----------------------------------
    kept_peers: list[PeersSection] = []
    dropped: set[str] = set()
    local_tables: list = []
    for s in config.peers:
        if s.disabled:
            kept_peers.append(s)
            continue
        if s.local_peer is None and config.localpeer not in {p.name for p in s.peers}:
            warn(None, f"Removing incomplete section 'peers {s.name}' (no peer named '{config.localpeer}').")
            dropped.add(s.name)
            # haproxy keeps the removed section's tables, usable locally without replication
            local_tables.extend(attrs.evolve(t, peers=None) for t in s.tables)
            continue
        builder = (peers_builders or {}).get(s.name)
        if (
            builder is not None
            and builder.local_server_tls is not None
            and s.bind is not None
            and not s.bind.tls.enabled
        ):
            where, _ = builder.local_server_tls
            warn(
                where,
                f"Peers section '{s.name}': local peer have a non-SSL listener and a SSL server configured "
                f"at line {s.bind.origin}.",
            )
        for peer in s.peers:
            if peer.name != config.localpeer:
                _check_verify(peer.tls, peer.origin, config, ctx)
        kept_peers.append(
            attrs.evolve(
                s,
                bind=tls_defaults.bind(s.bind) if s.bind is not None else None,
                peers=tuple(
                    attrs.evolve(q, tls=tls_defaults.server(q.tls, q.origin, f"peer '{s.name}/{q.name}'"))
                    for q in s.peers
                ),
            )
        )

    # proxies --------------------------------------------------------------------
    # With a stats socket, HAProxy's internal CLI proxy ("GLOBAL") takes the first id
    # (haproxy 2.6.12 `show stat`: fe=3, be=4 with a stats socket and `id 2` on a backend).
    internal = [None] if config.global_.stats_sockets else []
    ids = _assign_ids(internal + proxies, [None] * len(internal) + [p.id for p in proxies])[len(internal) :]
    seen_ids: dict[int, Proxy] = {}
    out: list[Proxy] = []
    for p, pid in zip(proxies, ids, strict=True):
        if p.id is not None and p.id in seen_ids:
            q = seen_ids[p.id]
            alert(
                p.origin,
                f"{p.kind} {p.name} reuses same custom id as {q.kind} {q.name} (declared at {q.origin}).",
            )
        seen_ids.setdefault(pid, p)
        label = f"Proxy '{p.name}'"
        if p.is_frontend and not p.binds and not p.disabled:
            warn(
                p.origin,
                f"{_kind_word(p)} '{p.name}' has no 'bind' directive. Please declare it as a backend if this was intended.",
            )
        missing = (p.is_frontend and p.timeouts.client is None) or (
            p.is_backend and (p.timeouts.connect is None or p.timeouts.server is None)
        )
        if missing and not p.disabled:
            warn(
                p.origin,
                f"missing timeouts for {_kind_word(p)} '{p.name}'.{_MISSING_TIMEOUTS_HINT}",
            )
        p = _http_only_settings(p, config, ctx)
        if p.is_frontend and p.default_backend is not None:
            _check_backend(
                p, p.default_backend, p.default_backend_origin or p.origin, "default_backend", backends, ctx
            )
        if p.is_frontend:
            for ub in p.use_backends:
                _check_backend(p, ub.backend, ub.origin, "use_backend", backends, ctx)
        spec = p.stick_table
        if spec is not None and spec.peers is not None:
            if spec.peers in dropped:
                spec = attrs.evolve(spec, peers=None)
            elif spec.peers not in seen_peers:
                hint = suggest(spec.peers, seen_peers)
                alert(
                    spec.origin,
                    f"{label}: unable to find sync peers '{spec.peers}'."
                    + (f" Did you mean '{hint}' ?" if hint else ""),
                )
        for rule in p.rules:
            for name, action in _table_refs(rule.keyword, rule.words):
                if name not in tables:
                    hint = suggest(name, tables)
                    alert(
                        rule.origin,
                        f"{label}: unable to find table '{name}' referenced by {action}."
                        + (f" Did you mean '{hint}' ?" if hint else ""),
                    )
        servers = tuple(
            attrs.evolve(s, tls=tls_defaults.server(s.tls, s.origin, f"server '{p.name}/{s.name}'"))
            for s in _check_servers(p, config, ctx)
        )
        binds = tuple(tls_defaults.bind(b) for b in p.binds)
        out.append(attrs.evolve(p, id=pid, servers=servers, binds=binds, stick_table=spec))

    config = attrs.evolve(
        config, proxies=tuple(out), peers=tuple(kept_peers), local_tables=tuple(local_tables)
    )
    return _store_server_ids(config)


def _store_server_ids(config: Config) -> Config:
    """HAProxy's config check adds ``server_id`` and ``server_key`` to the stored types
    of every table a ``stick on|match|store-*`` rule uses (haproxy 2.6.12 ``show table``
    lists both on such a table, whatever its ``store`` says; peers announce them too)."""
    used: set[str] = set()
    for p in config.proxies:
        for rule in p.rules:
            if rule.keyword.startswith("stick "):
                named = [name for name, _ in _table_refs(rule.keyword, rule.words)]
                used.add(named[0] if named else p.name)
    if not used:
        return config

    def stored(spec):
        if spec is None or spec.name not in used:
            return spec
        have = {item.name for item in spec.store}
        extra = tuple(StoreItem(name) for name in ("server_id", "server_key") if name not in have)
        return attrs.evolve(spec, store=(*spec.store, *extra)) if extra else spec

    return attrs.evolve(
        config,
        proxies=tuple(attrs.evolve(p, stick_table=stored(p.stick_table)) for p in config.proxies),
        peers=tuple(attrs.evolve(s, tables=tuple(stored(t) for t in s.tables)) for s in config.peers),
        local_tables=tuple(stored(t) for t in config.local_tables),
    )


class _TLSDefaults:
    """The global ``ssl-default-bind-*`` / ``ssl-default-server-*`` settings, merged
    into each TLS bind and server (`options.with_tls_defaults`); the versions the
    result accepts are checked there (`options.tls_line_problems`)."""

    def __init__(self, config: Config, ctx: ParseContext):
        self.ctx = ctx
        g = config.global_
        self.bind_ciphers = (g.ssl_default_bind_ciphers, g.ssl_default_bind_ciphersuites)
        self.server_ciphers = (g.ssl_default_server_ciphers, g.ssl_default_server_ciphersuites)
        # the words were checked while parsing the global section
        self.bind_options = parse_tls_default_options(g.ssl_default_bind_options, "ssl-default-bind-options")
        self.server_options = parse_tls_default_options(
            g.ssl_default_server_options, "ssl-default-server-options"
        )

    def bind(self, bind: Bind) -> Bind:
        tls = with_tls_defaults(bind.tls, *self.bind_ciphers, self.bind_options)
        self._check(tls, True, bind.origin, f"bind '{bind.address}'")
        return bind if tls is bind.tls else attrs.evolve(bind, tls=tls)

    def server(self, tls: TLSOptions, origin: SourceLocation, what: str) -> TLSOptions:
        tls = with_tls_defaults(tls, *self.server_ciphers, self.server_options)
        self._check(tls, False, origin, what)
        return tls

    def _check(self, tls: TLSOptions, bind: bool, origin: SourceLocation, what: str) -> None:
        alerts, warnings = tls_line_problems(tls, bind, what)
        for message in alerts:
            self.ctx.alert(origin, message)
        for message in warnings:
            self.ctx.warn(origin, message)


def _check_backend(
    p: Proxy, name: str, origin: SourceLocation, what: str, backends: dict, ctx: ParseContext
) -> None:
    if "%[" in name:
        return  # dynamic backend name, resolved per request
    target = backends.get(name)
    if target is None:
        hint = suggest(name, backends)
        ctx.alert(
            origin,
            f"Proxy '{p.name}': unable to find required {what}: '{name}'."
            + (f" Did you mean '{hint}' ?" if hint else ""),
        )
        return
    if p.mode == "http" and target.mode == "tcp":
        how = "as its default backend" if what == "default_backend" else "in a 'use_backend' rule"
        ctx.alert(
            origin,
            f"http {_kind_word(p)} '{p.name}' ({p.origin}) tries to use incompatible tcp backend '{target.name}' "
            f"({target.origin}) {how} (see 'mode').",
        )


def _table_refs(keyword: str, words: tuple[str, ...]):
    """(table name, action) pairs named by ``... table NAME`` in a rule."""
    action = words[0] if words else keyword
    if keyword.startswith("stick "):
        action = keyword
    elif not _TABLE_ACTION.match(action):
        return
    for i, w in enumerate(words[:-1]):
        if w in ("if", "unless"):
            return
        if w == "table":
            yield words[i + 1], action.split("(")[0]


def _check_verify(tls: TLSOptions, origin: SourceLocation, config: Config, ctx: ParseContext) -> None:
    if not tls.enabled or tls.ca_file or tls.verify == "none":
        return
    if tls.verify is None and config.global_.ssl_server_verify == "none":
        return
    ctx.alert(origin, _VERIFY_ALERT)


def _check_servers(p: Proxy, config: Config, ctx: ParseContext) -> tuple[Server, ...]:
    ids = _assign_ids(p.servers, [s.id for s in p.servers])
    out = []
    for s, sid in zip(p.servers, ids, strict=True):
        _check_verify(s.tls, s.origin, config, ctx)
        out.append(attrs.evolve(s, id=sid))
    return tuple(out)


def _check_table_names(config: Config, ctx: ParseContext) -> None:
    """HAProxy 2.6 looks a new table's name up among the tables declared before it:
    proxy tables are named after their proxy (a frontend and a backend of one name
    cannot both have one), and a peers-section ``table NAME`` is looked up by its bare
    NAME (haproxy -c: "stick-table name 'x' conflicts with table declared in frontend
    'x' at tt.cfg:7." for ``table x`` in a peers section)."""
    file_index = {path: i for i, path in enumerate(config.files)}
    declared: list[tuple[tuple[int, int], str, object]] = []
    for p in config.proxies:
        if p.stick_table is not None:
            declared.append(((file_index.get(p.origin.path, 0), p.stick_table.origin.line), p.name, p))
    for s in config.peers:
        for t in s.tables:
            declared.append(((file_index.get(t.origin.path, 0), t.origin.line), t.wire_name.lstrip("/"), t))
    proxy_tables: dict[str, Proxy] = {}
    for _, name, owner in sorted(declared, key=lambda item: item[0]):
        earlier = proxy_tables.get(name)
        origin = owner.stick_table.origin if isinstance(owner, Proxy) else owner.origin
        if earlier is not None and earlier.stick_table is not None:
            ctx.alert(
                origin,
                f"stick-table name '{name}' conflicts with table declared in {earlier.kind} '{earlier.name}' "
                f"at {earlier.stick_table.origin}.",
            )
        elif isinstance(owner, Proxy):
            proxy_tables[name] = owner


def _http_only_settings(p: Proxy, config: Config, ctx: ParseContext) -> Proxy:
    """What HAProxy ignores, with a warning, in a tcp-mode proxy, and a frontend log
    format without any log address (haproxy -c 2.6.12's messages, without location)."""
    name = f"{_kind_word(p)} '{p.name}'"
    changes: dict = {}
    if p.mode != "http" and not p.disabled:
        if p.is_frontend and p.monitor_uri is not None:
            ctx.warn(None, f"monitor-uri will be ignored for {name} (needs 'mode http').")
            changes["monitor_uri"] = None
    targets = [t for t in p.log_targets if t.target != "global"]
    if any(t.target == "global" for t in p.log_targets):
        targets.extend(config.global_.log_targets)
    if p.is_frontend and (p.httplog or p.tcplog or p.log_format) and not targets and not p.disabled:
        ctx.warn(None, f"log format ignored for {name} since it has no log address.")
    if p.mode != "http" and p.httplog:
        # an `option httplog` inherited by a tcp proxy falls back to tcplog silently
        changes.update(httplog=False, tcplog=True)
    if p.mode != "http" and not p.disabled:
        kept = list(p.rules)
        for keyword in ("http-request", "http-response", "http-after-response"):
            if any(r.keyword == keyword for r in kept):
                ctx.warn(None, f"'{keyword}' rules ignored for {name} as they require HTTP mode.")
                kept = [r for r in kept if r.keyword != keyword]
        if len(kept) != len(p.rules):
            changes["rules"] = tuple(kept)
        if p.forwardfor is not None:
            ctx.warn(None, f"'option forwardfor' ignored for {name} as it requires HTTP mode.")
            changes["forwardfor"] = None
    return attrs.evolve(p, **changes) if changes else p
