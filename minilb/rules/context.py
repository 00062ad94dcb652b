"""Owns the compile context: what a rule, ACL or sample parser may consult while a
proxy's rules are compiled (the proxy, the tables mapping, the ACLs declared so far,
the rule set being compiled) and where its warnings go.

Feature parsers (fetch ``resolve`` hooks, action parsers) receive a `CompileContext`
and use:

- ``ctx.table(name)`` -> ``tables[name]`` or raises `TableNotFound` (a
  `SampleError`: "unable to find table 'x'"); ``ctx.own_table`` -> this proxy's own table object or None;
  ``ctx.tables`` the whole mapping (in check mode the values are the `TableSpec`s,
  so parsers must not call runtime methods at compile time).
- ``ctx.parse_expr(text)`` -> `SampleExpr`; ``ctx.parse_format(text)`` -> a log-format
  evaluator ``fn(sess, txn) -> str``.
- ``ctx.warn(message)`` to report a warning at the rule's line.
- ``ctx.proxy`` (the `Proxy` model), ``ctx.ruleset`` ("http-request", ...),
  ``ctx.location`` (the rule's `SourceLocation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minilb.errors import WARNING, Diagnostic, SourceLocation
from minilb.rules import samples as S


class CompileContext:
    def __init__(
        self,
        proxy: Any,
        tables: Mapping[str, object],
        config: Any = None,
        diagnostics: list[Diagnostic] | None = None,
        rng: Any = None,
        backends: Mapping[str, object] | None = None,
    ):
        self.proxy = proxy
        #: backend name -> runtime object with ``servers`` (each with ``up``), for nbsrv()
        self.backends = backends
        #: the injected `random.Random` that ``rand()`` draws from
        self.rng = rng
        self.tables = tables
        self.config = config
        self.diagnostics: list[Diagnostic] = diagnostics if diagnostics is not None else []
        self.acls: dict[str, Any] = {}
        self.ruleset = ""
        self.location: SourceLocation | None = None
        #: names of backends that exist, for use_backend resolution (None = do not check)
        self.backend_names: set[str] | None = None

    # -- tables

    def table(self, name: str) -> object:
        tab = self.tables.get(name)
        if tab is None:
            raise S.TableNotFound(name, S.did_you_mean(name, self.tables))
        return tab

    @property
    def own_table(self) -> object | None:
        if self.proxy is None or getattr(self.proxy, "stick_table", None) is None:
            return None
        return self.tables.get(self.proxy.stick_table.name)

    # -- sub-parsers

    def parse_expr(self, text: str, display: str | None = None) -> S.SampleExpr:
        """Compile a sample expression used by the current rule set; a fetch whose data
        this rule set cannot provide is an error (haproxy's wording, naming ``display``
        or the expression)."""
        expr = S.parse_expr(text, self)
        label = S.missing_need(expr.fetch.needs, self.ruleset, getattr(self.proxy, "kind", ""))
        if label is not None:
            if self.ruleset.startswith("stick "):  # haproxy names the fetch and the phase
                phase = "for 'store-response'" if self.ruleset.endswith("response") else "during request"
                raise S.UnavailableFetch(
                    f"fetch method '{expr.fetch.name}' extracts information from '{label}', none of which is "
                    f"available {phase}"
                )
            raise S.UnavailableFetch(
                f"fetch method '{display or text}' extracts information from '{label}', none of which is available here"
            )
        return expr

    def parse_format(self, text: str) -> Any:
        from minilb.rules.logformat import parse_log_format

        return parse_log_format(text, self)

    # -- diagnostics

    def warn(self, message: str) -> None:
        self.diagnostics.append(Diagnostic(WARNING, message, self.location))

    @property
    def proxy_desc(self) -> str:
        if self.proxy is None:
            return "proxy"
        kind = "proxy" if self.proxy.kind == "listen" else self.proxy.kind  # haproxy's own words
        return f"{kind} '{self.proxy.name}'"
