"""Owns reading configuration files into a validated `model.Config`.

`load_config(paths)` reads each path in order (a directory contributes its
``*.cfg`` files in lexical order, as ``haproxy -f DIR``), feeds the lexer's lines
to the section parsers, runs `config.validate`, and returns the config with its
warnings, or raises `ConfigError` carrying every diagnostic (warnings included)
when any alert was found.  Like HAProxy, each file starts outside any section:
a section never continues into the next file.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence

from minilb.config import keywords
from minilb.config.context import ParseContext
from minilb.config.lexer import Line, iter_lines
from minilb.config.model import Config, Proxy
from minilb.config.parse_global import GlobalBuilder, handle_global_line
from minilb.config.parse_peers import PeersBuilder, handle_peers_line
from minilb.config.parse_proxy import ProxyBuilder, handle_proxy_line
from minilb.config.validate import validate
from minilb.errors import ALERT, ConfigError, Diagnostic

_PROXY_HEADERS = ("frontend", "backend", "listen")
_HEADERS = frozenset(("global", "defaults", "peers", *_PROXY_HEADERS, *keywords.UNIMPLEMENTED_SECTIONS))
#: Largest configuration file read, in bytes.
MAX_FILE_SIZE = 64 << 20


def expand_paths(paths: Sequence[str]) -> tuple[list[str], list[Diagnostic]]:
    """Files to read: a directory gives its ``*.cfg`` files in lexical order."""
    files: list[str] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.endswith(".cfg"))
            files.extend(os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n)))
        else:
            files.append(path)
    return files, problems


class _Reader:
    """Feeds lines to the section in effect; owns the builders of one load."""

    def __init__(self, ctx: ParseContext, cli_localpeer: str | None, hostname: str):
        self.ctx = ctx
        self.cli_localpeer = cli_localpeer
        self.hostname = hostname
        self.global_ = GlobalBuilder()
        self.defaults: list[Proxy] = []
        self.current_defaults: Proxy | None = None
        self.proxies: list[Proxy] = []
        self.peers = []
        self.section = None  # builder, or a string for ignored sections
        self.section_name = ""
        self.explicit_defaults: set = set()  # named defaults referenced by `from`

    def localpeer(self) -> str:
        return self.cli_localpeer or self.global_.fields["localpeer"] or self.hostname

    def finish_section(self) -> None:
        s = self.section
        if isinstance(s, ProxyBuilder):
            proxy = s.build()
            if s.kind == "defaults":
                self.defaults.append(proxy)
                self.current_defaults = proxy
            else:
                self.proxies.append(proxy)
        elif isinstance(s, PeersBuilder):
            self.peers.append((s.build(), s))
        self.section = None
        self.section_name = ""

    def feed(self, line: Line) -> None:
        head = line.words[0]
        if head in _HEADERS:
            self.finish_section()
            self.start_section(line)
            return
        s = self.section
        if s is None:
            self.ctx.alert(line.location, f"unknown keyword '{head}' out of section.")
        elif isinstance(s, GlobalBuilder):
            handle_global_line(s, line, self.ctx)
        elif isinstance(s, ProxyBuilder):
            handle_proxy_line(s, line, self.ctx)
        elif isinstance(s, PeersBuilder):
            handle_peers_line(s, line, self.ctx)
        # else: a section minilb ignores

    def _note_defaults_use(self, defaults: Proxy | None, from_name: str | None, loc) -> None:
        """HAProxy 2.6 refuses to mix an explicit (`from`) and an implicit use of one named
        defaults section; it prints an [ALERT] yet still accepts the configuration, so
        minilb reports it as a warning."""
        if defaults is None or not defaults.name:
            return
        key = (defaults.origin, defaults.name)
        if from_name is not None:
            self.explicit_defaults.add(key)
            return
        if key in self.explicit_defaults:
            self.ctx.warn(
                loc,
                f"defaults section '{defaults.name}' (declared at {defaults.origin}) is explicitly referenced by "
                "another proxy and implicitly used here. To avoid any ambiguity don't mix both usage. Add a last "
                "defaults section not explicitly used or always use explicit references.",
            )

    def start_section(self, line: Line) -> None:
        head, args, loc = line.words[0], line.words[1:], line.location
        ctx = self.ctx
        if head == "global":
            self.section = self.global_
            self.section_name = "global"
            if args:
                ctx.alert(loc, f"'global' cannot handle unexpected argument '{args[0]}'.")
            return
        if head in keywords.UNIMPLEMENTED_SECTIONS:
            ctx.warn(loc, f"'{head}' section is not supported by minilb and is ignored.")
            self.section = head
            self.section_name = args[0] if args else head
            return
        if head == "peers":
            ctx.seen_peers_section = True
            if not args:
                ctx.alert(loc, "missing name for peers section.")
                self.section = "peers"
                return
            if len(args) > 1:
                ctx.alert(loc, f"'peers' cannot handle unexpected argument '{args[1]}'.")
            self.section = PeersBuilder(args[0], loc, self.localpeer())
            self.section_name = args[0]
            return
        # defaults / frontend / backend / listen
        name = ""
        rest = list(args)
        if head != "defaults" or (rest and rest[0] != "from"):
            if not rest:
                ctx.alert(loc, f"'{head}' expects <name> as an argument.")
                self.section = head  # skip its lines
                return
            name = rest.pop(0)
            bad = [c for c in name if not (c.isalnum() or c in "-_.:")]
            if bad:
                ctx.alert(loc, f"character '{bad[0]}' is not permitted in '{head}' name '{name}'.")
        # a defaults section starts afresh ("reset by the next defaults section") unless `from`
        defaults = None if head == "defaults" else self.current_defaults
        from_name = None
        if rest:
            if rest[0] != "from" or len(rest) != 2:
                ctx.alert(
                    loc,
                    f"'{head}' : unexpected argument '{rest[0]}'; expects '{head} <name> [from <defaults>]'.",
                )
            else:
                from_name = rest[1]
                found = [d for d in self.defaults if d.name == from_name]
                if not found:
                    ctx.alert(loc, f"defaults section '{from_name}' not found for {head} '{name}'.")
                else:
                    defaults = found[-1]
        self._note_defaults_use(defaults, from_name, loc)
        self.section = ProxyBuilder(head, name, loc, defaults, from_name, ctx)
        self.section_name = name or head


def load_config(
    paths: Sequence[str],
    *,
    localpeer: str | None = None,
    environ: Mapping[str, str] | None = None,
    hostname: str | None = None,
) -> tuple[Config, list[Diagnostic]]:
    """Read, parse and validate; returns (config, warnings) or raises `ConfigError`."""
    env = dict(os.environ if environ is None else environ)
    if hostname is None:
        hostname = socket.gethostname()
    files, diagnostics = expand_paths(paths)
    ctx = ParseContext(env)
    ctx.cli_localpeer = localpeer
    ctx.diagnostics.extend(diagnostics)
    env["HAPROXY_LOCALPEER"] = localpeer or hostname  # as haproxy sets it at start-up
    env["HAPROXY_CFGFILES"] = ";".join(files)
    reader = _Reader(ctx, localpeer, hostname)
    if not files:
        ctx.alert(None, "No configuration file specified.")
    for path in files:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_FILE_SIZE + 1)
        except OSError as exc:
            ctx.alert(None, f"Could not open configuration file {path} : {exc.strerror}")
            continue
        if len(data) > MAX_FILE_SIZE:
            ctx.alert(None, f"configuration file {path} is too large (over {MAX_FILE_SIZE} bytes)")
            continue
        text = data.decode("utf-8", errors="replace")  # printable diagnostics, whatever the bytes
        for line in iter_lines(path, text, env, ctx.diagnostics, lambda: reader.section_name):
            reader.feed(line)
        reader.finish_section()
    raw = Config(
        files=tuple(files),
        global_=reader.global_.build(),
        defaults=tuple(reader.defaults),
        proxies=tuple(reader.proxies),
        peers=tuple(p for p, _ in reader.peers),
        localpeer=reader.localpeer(),
    )
    config = validate(raw, ctx, {p.name: b for p, b in reader.peers})
    if any(d.severity == ALERT for d in ctx.diagnostics):
        raise ConfigError(ctx.diagnostics)
    return config, list(ctx.diagnostics)
