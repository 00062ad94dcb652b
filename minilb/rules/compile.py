"""Owns turning a proxy's rule words (``acl``, ``http-request``, ``tcp-request``,
``use_backend``, ``redirect``, ``use-server``...) into `ProxyRules`: every name
resolved once (ACLs, tables, backends), every problem reported with its file:line
in one `ConfigError`.

Entry points:

- ``compile_rules(config, tables, diagnostics=None) -> dict[str, ProxyRules]``:
  one `ProxyRules` per frontend/backend/listen.  ``tables`` maps table names
  (`TableSpec.name`) to the runtime table objects.  Warnings are appended to
  ``diagnostics`` when given.
- ``check_rules(config) -> list[Diagnostic]``: the same against placeholder tables
  (the `TableSpec`s themselves), for check mode.

Other keywords can be compiled by feature modules (``stick on|match|store-request``):
``register_rule_keyword("stick match", compiler)`` where
``compiler(words, cond, ctx) -> object``; ``words`` are the words before if/unless,
``cond`` is a compiled `Condition` (use ``cond.pred(sess, txn)``) or None; results
land in ``ProxyRules.extra["stick match"]`` in file order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from minilb.errors import ALERT, WARNING, ConfigError, Diagnostic
from minilb.rules import actions as A
from minilb.rules import samples as S
from minilb.rules.acl import Acl, Condition, parse_acl_expr, parse_condition
from minilb.rules.context import CompileContext
from minilb.rules.features import load_features
from minilb.rules.payload import NeedMore
from minilb.rules.txn import Reply, Session, Txn
from minilb.units import parse_time

RuleKeywordCompiler = Callable[[list[str], Condition | None, CompileContext], Any]
RULE_KEYWORDS: dict[str, RuleKeywordCompiler] = {}


def register_rule_keyword(keyword: str, compiler: RuleKeywordCompiler) -> None:
    """Compile every ``keyword`` rule line with ``compiler`` (see module docstring)."""
    RULE_KEYWORDS[keyword] = compiler


_Rule = tuple[Callable[[Any, Any], bool] | None, Callable[[Any, Any], Any]]


def _run_http(rules: tuple[_Rule, ...]) -> Callable[[Txn], Reply | None]:
    stop, reject = A.STOP, A.REJECT
    reject_reply = A.REJECT_REPLY

    def run(txn: Txn) -> Reply | None:
        s = txn.sess
        for cond, act in rules:
            if cond is None or cond(s, txn):
                r = act(s, txn)
                if r is not None:
                    if r is stop:
                        return None
                    if r is reject:
                        return reject_reply
                    return r
        return None

    return run


def _run_tcp(rules: tuple[_Rule, ...]) -> Callable[..., bool]:
    """The final verdict: True (accept / go on) or False (reject)."""
    step = _tcp_stepper(rules)

    def run(sess: Session, txn: Any = None) -> bool:
        verdict = step(sess, txn)
        return True if verdict is None else verdict

    return run


def _tcp_stepper(rules: tuple[_Rule, ...]) -> Callable[..., bool | None]:
    """Evaluate from ``sess.tcp_rule_pos``: True/False, or None when a rule waits for
    more request data (`NeedMore`, only while ``sess.req_final`` is False)."""
    stop, reject = A.STOP, A.REJECT
    n = len(rules)

    def step(sess: Session, txn: Any = None) -> bool | None:
        i = sess.tcp_rule_pos
        try:
            while i < n:
                cond, act = rules[i]
                if cond is None or cond(sess, txn):
                    r = act(sess, txn)
                    if r is stop:
                        sess.tcp_rule_pos = 0
                        return True
                    if r is reject:
                        sess.tcp_rule_pos = 0
                        return False
                i += 1
        except NeedMore:
            sess.tcp_rule_pos = i
            return None
        sess.tcp_rule_pos = 0
        return True

    return step


def _accept_all(sess: Session, txn: Any = None) -> bool:
    return True


def _no_reply(txn: Txn) -> None:
    return None


class ProxyRules:
    """The compiled rules of one proxy.

    A request crossing a frontend and a backend runs ``frontend.http_request(txn)``,
    then ``select_backend``, then ``backend.http_request(txn)`` (a listen proxy that
    is its own backend runs them once).  Each ``http_*`` returns None (go on) or the
    `Reply` to send (``raw == b""`` with ``close`` set: close without answering).
    ``tcp_*(sess, txn=None)`` return True (accept / go on) or False (reject: close); in
    HTTP mode pass the `Txn` to ``tcp_content`` so HTTP fetches see the request.
    ``tcp_content_wait(sess)`` is the inspecting form (True, False, or None: wait for
    more data), see `minilb.rules.payload`.
    ``select_backend`` may return a name built at run time (``use_backend be_%[...]``)
    that names no backend: the caller falls back to ``default_backend`` as haproxy does.
    ``http_response``/``http_after_response`` edit ``txn.status``, ``txn.resp_reason``
    (`minilb.rules.replies.reason_for` gives haproxy's phrase when it is None) and
    ``txn.resp_headers``: run them before the response head is written.
    """

    def __init__(self, name: str):
        self.name = name
        self.inspect_delay_ms = 0
        self.http_request: Callable[[Txn], Reply | None] = _no_reply
        self.http_response: Callable[[Txn], Reply | None] = _no_reply
        self._after: Callable[[Txn], Reply | None] = _no_reply
        self.tcp_connection: Callable[..., bool] = _accept_all
        self.tcp_session: Callable[..., bool] = _accept_all
        self.tcp_content: Callable[..., bool] = _accept_all
        self.tcp_content_wait: Callable[..., bool | None] = _accept_all
        self.tcp_response: Callable[..., bool] = _accept_all
        self.has_http_request = False
        self.has_http_response = False
        self.has_http_after_response = False
        self.has_tcp_connection = False
        self.has_tcp_session = False
        self.has_tcp_content = False
        self.has_tcp_response = False
        self.has_use_backend = False
        self.has_use_server = False
        self._use_backends: tuple[tuple[Callable[[Any, Any], bool] | None, Any], ...] = ()
        self._use_servers: tuple[tuple[Callable[[Any, Any], bool] | None, str], ...] = ()
        #: compiled lines of keywords registered with `register_rule_keyword`
        self.extra: dict[str, list[Any]] = {}

    def http_after_response(self, txn: Txn) -> None:
        self._after(txn)

    def select_backend(self, txn: Txn | Session) -> str | None:
        """The backend named by the first matching ``use_backend`` rule, or None.
        Takes the `Txn`, or the `Session` of a TCP-mode connection."""
        if type(txn) is Session:
            s, txn = txn, None
        else:
            s = txn.sess
        for cond, target in self._use_backends:
            try:
                if cond is not None and not cond(s, txn):
                    continue
            except NeedMore:  # a TCP-mode condition on data that did not come
                continue
            if type(target) is str:
                return target
            name = target(s, txn)
            if name:
                return name
        return None

    def select_server(self, txn: Txn) -> str | None:
        """The server named by the first matching ``use-server`` rule, or None."""
        s = txn.sess
        for cond, name in self._use_servers:
            if cond is None or cond(s, txn):
                return name
        return None


def _file_rank(config: Any) -> dict[str, int]:
    return {path: i for i, path in enumerate(getattr(config, "files", ()) or ())}


def _split_condition(words: tuple[str, ...] | list[str]) -> tuple[list[str], list[str]]:
    for i, w in enumerate(words):
        if w in ("if", "unless"):
            return list(words[:i]), list(words[i:])
    return list(words), []


#: rule kinds in the order haproxy runs them ("monitor fail" is not a rule here)
_RUN_ORDER = (
    "tcp-request connection",
    "tcp-request session",
    "tcp-request content",
    "monitor fail",
    "http-request",
    "redirect",
    "use_backend",
    "use-server",
)


#: rule kinds whose conditions haproxy checks for raw-buffer fetches in HTTP proxies
#: ("L6 sample fetches ignored"), by the rank it checks them in (the stick kinds are one
#: list); redirect conditions are not checked
_L6_CHECK_RANK = {
    "use_backend": 0,
    "use-server": 1,
    "stick on": 2,
    "stick match": 2,
    "stick store-request": 2,
    "tcp-request connection": 3,
    "tcp-request session": 4,
    "tcp-request content": 5,
    "tcp-response content": 6,
    "http-request": 7,
    "http-response": 8,
    "http-after-response": 9,
}


class _ProxyCompiler:
    def __init__(
        self,
        config: Any,
        proxy: Any,
        tables: Mapping[str, object],
        diags: list[Diagnostic],
        rng: Any = None,
        backends: Mapping[str, object] | None = None,
        late: list[Diagnostic] | None = None,
    ):
        self.config = config
        self.proxy = proxy
        self.diags = diags
        #: what haproxy reports once every section is read (after all parsing messages)
        self.late = late if late is not None else diags
        #: (rank in `_L6_CHECK_RANK`, origin) of conditions reading the raw request buffer
        self.l6_conds: list[tuple[int, Any]] = []
        self.ctx = CompileContext(proxy, tables, config, diags, rng, backends)
        self.rules: dict[str, list[tuple[Any, Any]]] = {r: [] for r in A.RULESETS}
        self.redirects: list[tuple[Any, Any]] = []
        self.keyword_lines: list[tuple[str, list[str], Any, Any]] = []
        self.use_backends: list[tuple[Any, Any]] = []
        self.use_servers: list[tuple[Any, str]] = []
        self.extra: dict[str, list[Any]] = {}
        self.inspect_delay = 0
        self.seen: set[str] = set()  # rule kinds met so far (order warnings)
        if config is not None:
            self.backend_names = {p.name for p in config.proxies if p.is_backend}
            self.server_names = {s.name for s in proxy.servers}
        else:
            self.backend_names = None
            self.server_names = None

    # -- diagnostics

    def alert(self, message: str, location: Any) -> None:
        self.diags.append(Diagnostic(ALERT, message, location))

    def warnings_to_diags(self, warnings: list[str], location: Any) -> None:
        for w in warnings:
            self.diags.append(Diagnostic(WARNING, w, location))

    # -- lines

    def compile(self) -> ProxyRules:
        rank = _file_rank(self.config)
        p = self.proxy
        lines: list[tuple[Any, int, Any]] = []
        for n, a in enumerate(p.acls):
            lines.append((a.origin, n, a))
        for n, r in enumerate(p.rules):
            lines.append((r.origin, 10_000_000 + n, r))
        for n, u in enumerate(p.use_backends):
            lines.append((u.origin, 20_000_000 + n, u))
        lines.sort(key=lambda e: (rank.get(e[0].path, len(rank)), e[0].line, e[1]))
        for origin, _, item in lines:
            self.ctx.location = origin
            kind = type(item).__name__
            if kind == "AclLine":
                self.acl_line(item)
            elif kind == "UseBackend":
                self.use_backend(item)
            else:
                self.rule_line(item)
        return self.build()

    def acl_line(self, line: Any) -> None:
        warnings: list[str] = []
        try:
            term = parse_acl_expr(list(line.words), self.ctx, warnings)
        except S.TableNotFound as e:
            self.alert(e.describe(True, "", self.proxy.name), line.origin)
            return
        except S.SampleError as e:
            self.alert(f"error detected while parsing ACL '{line.name}' : {_dot(str(e))}", line.origin)
            return
        for w in warnings:
            self.diags.append(Diagnostic(WARNING, w, None))
        acl = self.ctx.acls.get(line.name)
        if acl is None:
            acl = self.ctx.acls[line.name] = Acl(line.name)
        acl.add(term)

    def condition(self, words: list[str], what: str, ruleset: str | None, location: Any) -> tuple[bool, Any]:
        """(ok, predicate or None).  ``ruleset`` names where the rule evaluates (a
        `samples.RULE_PLACES` key): ACL keywords that cannot work there are reported as
        haproxy does and never match at run time."""
        if not words:
            return True, None
        warnings: list[str] = []
        places = S.rule_places(ruleset, self.proxy.kind) if ruleset else 0
        try:
            cond = parse_condition(words, self.ctx.acls, self.ctx, warnings, places)
        except S.TableNotFound as e:
            self.alert(e.describe(True, "", self.proxy.name), location)
            return False, None
        except S.SampleError as e:
            self.alert(f"error detected while parsing an '{what}' condition : {_dot(str(e))}", location)
            return False, None
        for w in warnings:
            self.diags.append(Diagnostic(WARNING, w, None))
        if ruleset in _L6_CHECK_RANK and "req-buf" in cond.needs and self.proxy.mode == "http":
            self.l6_conds.append((_L6_CHECK_RANK[ruleset], location))
        if places:
            msg = _conflict_warning(cond.uses, places, ruleset if ruleset.startswith("tcp-") else None)
            if msg is not None:
                self.diags.append(Diagnostic(WARNING, msg, location))
        return True, cond

    def rule_line(self, line: Any) -> None:
        kw = line.keyword
        words = list(line.words)
        if (
            kw == "tcp-request"
            and words
            and words[0] in ("connection", "session", "content", "inspect-delay")
        ):
            kw, words = f"tcp-request {words[0]}", words[1:]
        elif kw == "tcp-response" and words and words[0] in ("content", "inspect-delay"):
            kw, words = f"tcp-response {words[0]}", words[1:]
        if kw == "tcp-request inspect-delay":
            try:
                self.inspect_delay = parse_time(words[0]) if words else 0
            except (ValueError, IndexError) as e:
                self.alert(f"'tcp-request inspect-delay' : {e}", line.origin)
            return
        if kw == "tcp-response inspect-delay":
            return
        if kw in (A.TCP_CONNECTION, A.TCP_SESSION) and not self.proxy.is_frontend:
            self.alert(
                f"{kw} is not allowed because {self.proxy.kind} {self.proxy.name} is not a frontend",
                line.origin,
            )
            return
        if kw in _RUN_ORDER:
            self.misplaced(kw, line.origin)
        if kw in A.RULESETS:
            self.action_rule(kw, words, line.origin)
        elif kw == "redirect":
            self.redirect_rule(words, line.origin)
        elif kw == "use-server":
            self.seen.add(kw)
            self.use_server(words, line.origin)
        elif kw == "use_backend":
            # the config model lists use_backend lines in `use_backends` too: compile them once
            if not self.proxy.use_backends:
                self.use_backend_words(words[0] if words else "", tuple(words[1:]), line.origin)
        elif kw in RULE_KEYWORDS:
            self.keyword_rule(kw, words, line.origin)
        # other keywords (stick ... before the stick module registers) are not ours

    def misplaced(self, kind: str, origin: Any) -> None:
        """Warn, as haproxy does, when a rule comes after one of a kind that runs later
        (`_RUN_ORDER`): it still runs first."""
        for later in _RUN_ORDER[_RUN_ORDER.index(kind) + 1 :]:
            if later in self.seen:
                article = "an" if later == "http-request" else "a"
                self.diags.append(
                    Diagnostic(
                        WARNING,
                        f"a '{kind.partition(' ')[0]}' rule placed after {article} '{later}' rule will still be "
                        "processed before.",
                        origin,
                    )
                )
                break
        self.seen.add(kind)

    def action_rule(self, ruleset: str, words: list[str], origin: Any) -> None:
        ctx = self.ctx
        ctx.ruleset = ruleset
        if not words:
            self.unknown_action(ruleset, "", origin)
            return
        head, cond_words = _split_condition(words)
        word = head[0] if head else words[0]
        try:
            adef, name, paren = A.lookup_action(ruleset, word)
        except S.SampleError as e:
            self.alert(self.rule_error(ruleset, word, str(e)), origin)
            return
        if adef is None or (adef.paren and paren is None):
            self.unknown_action(ruleset, word, origin)
            return
        spec = A.ActionSpec(ruleset, word, name, paren, head[1:])
        try:
            out = adef.parser(spec, ctx)
        except S.TableNotFound as e:
            if not e.fetch:  # an action's own table argument (`track-sc0 src table T`)
                self.alert(
                    f"Proxy '{self.proxy.name}': unable to find table '{e.table}' referenced by {word}{e.hint}.",
                    origin,
                )
            else:
                self.alert(e.describe(False, ruleset, self.proxy.name), origin)
            return
        except S.UnavailableFetch as e:
            if ruleset.startswith("tcp-"):  # tcp rules print it bare (track-sc* names the rule)
                prefix = f"'{ruleset} {word}' : " if word.startswith("track-sc") else ""
                self.alert(prefix + str(e), origin)
            else:
                self.alert(self.rule_error(ruleset, word, str(e)), origin)
            return
        except S.SampleError as e:
            self.alert(self.rule_error(ruleset, word, str(e)), origin)
            return
        fn, used = out if isinstance(out, tuple) else (out, len(spec.args))
        if used < len(spec.args):
            self.alert(
                f"'{ruleset} {word}' expects either 'if' or 'unless' followed by a condition but found "
                f"'{spec.args[used]}'.",
                origin,
            )
            return
        ok, cond = self.condition(cond_words, f"{ruleset} {word}", ruleset, origin)
        if ok:
            self.rules[ruleset].append((cond, fn))

    def rule_error(self, ruleset: str, word: str, message: str) -> str:
        return (
            f"error detected in {self.ctx.proxy_desc} while parsing '{ruleset} {word}' rule : {_dot(message)}"
        )

    def unknown_action(self, ruleset: str, word: str, origin: Any) -> None:
        names = A.action_names(ruleset)
        listing = ", ".join(f"'{n}'" for n in names)
        if ruleset.startswith("tcp-"):
            msg = f"'{ruleset}' expects {listing} in {self.ctx.proxy_desc} (got '{word}')."
        else:
            msg = f"'{ruleset}' expects {listing}, but got '{word}'."
            best = S.did_you_mean(word.partition("(")[0], A.ACTIONS.get(ruleset, {}))
            if best:
                msg += f" Did you mean '{best.split(chr(39))[1]}' maybe ?"
        self.alert(msg, origin)

    def redirect_rule(self, words: list[str], origin: Any) -> None:
        self.ctx.ruleset = A.HTTP_REQUEST
        head, cond_words = _split_condition(words)
        try:
            fn, _ = A.parse_redirect(head, self.ctx)
        except S.SampleError as e:
            self.alert(
                f"error detected in {self.ctx.proxy_desc} while parsing redirect rule : {_dot(str(e))}",
                origin,
            )
            return
        ok, cond = self.condition(cond_words, "redirect", "redirect", origin)
        if ok:
            self.redirects.append((cond, fn))

    def use_backend(self, item: Any) -> None:
        self.use_backend_words(item.backend, tuple(item.cond), item.origin)

    def use_backend_words(self, name: str, cond_words: tuple[str, ...], origin: Any) -> None:
        self.seen.add("use_backend")
        if not name:
            self.alert("'use_backend' requires a backend name.", origin)
            return
        target: Any = name
        self.ctx.ruleset = "use_backend format"
        if "%" in name:
            try:
                fmt = S.cfg_str(name) if "%[" not in name else None
                if fmt is None:
                    from minilb.rules.logformat import parse_log_format

                    lf = parse_log_format(name, self.ctx)
                    target = lf.constant if lf.constant is not None else lf.render
            except S.SampleError as e:  # haproxy checks these after parsing, in its own words
                self.alert(
                    f"Parsing [{origin}]: failed to parse use_backend rule '{name}' : {_dot(str(e))}", None
                )
                return
        if type(target) is str and self.backend_names is not None and target not in self.backend_names:
            hint = S.did_you_mean(target, self.backend_names)
            self.alert(
                f"Proxy '{self.proxy.name}': unable to find required use_backend: '{target}'{hint}.", origin
            )
            return
        ok, cond = self.condition(list(cond_words), "use_backend", "use_backend", origin)
        if ok:
            self.use_backends.append((cond, target))

    def use_server(self, words: list[str], origin: Any) -> None:
        if not words:
            self.alert("'use-server' requires a server name.", origin)
            return
        name = words[0]
        if not self.proxy.is_backend:
            self.diags.append(
                Diagnostic(
                    WARNING,
                    f"'use-server' ignored because {self.proxy.kind} '{self.proxy.name}' has no backend capability.",
                    origin,
                )
            )
            return
        if self.server_names is not None and name not in self.server_names:
            self.alert(
                f"{self.proxy.kind} '{self.proxy.name}' : unable to find server '{name}' referenced in a "
                f"'use-server' rule{S.did_you_mean(name, self.server_names)}.",
                origin,
            )
            return
        ok, cond = self.condition(words[1:], "use-server", "use-server", origin)
        if ok:
            self.use_servers.append((cond, name))

    def keyword_rule(self, kw: str, words: list[str], origin: Any) -> None:
        head, cond_words = _split_condition(words)
        ok, cond = self.condition(cond_words, kw, kw, origin)
        if ok:  # compiled in build(), once every acl line is known
            self.keyword_lines.append((kw, head, cond, origin))

    def compile_keyword_lines(self) -> None:
        for kw, head, cond, origin in self.keyword_lines:
            if cond is not None:
                cond.refresh()
            self.ctx.ruleset = kw
            self.ctx.location = origin
            try:
                obj = RULE_KEYWORDS[kw](head, cond, self.ctx)
            except S.SampleError as e:
                head_kw = kw.partition(" ")[0]  # haproxy names the directive ('stick')
                self.alert(f"'{head_kw}': {_dot(str(e))}", origin)
                continue
            self.extra.setdefault(kw, []).append(obj)

    # -- result

    def build(self) -> ProxyRules:
        # conditions name ACLs whose later lines also count: resolve them now
        def fix(pairs):
            return [(None if cond is None else cond.refresh(), x) for cond, x in pairs]

        for key in self.rules:
            self.rules[key] = fix(self.rules[key])
        self.redirects = fix(self.redirects)
        self.use_backends = fix(self.use_backends)
        self.use_servers = fix(self.use_servers)
        self.compile_keyword_lines()
        for _, origin in sorted(self.l6_conds, key=lambda e: e[0]):
            self.late.append(
                Diagnostic(
                    WARNING,
                    f"Proxy '{self.proxy.name}': L6 sample fetches ignored on HTTP proxies (declared at {origin}).",
                    None,
                )
            )
        pr = ProxyRules(self.proxy.name)
        from_model = getattr(self.proxy, "tcp_inspect_delay", None)
        pr.inspect_delay_ms = from_model if from_model is not None else self.inspect_delay
        req = self.rules[A.HTTP_REQUEST] + self.redirects
        if req:
            pr.http_request = _run_http(tuple(req))
            pr.has_http_request = True
        if self.rules[A.HTTP_RESPONSE]:
            pr.http_response = _run_http(tuple(self.rules[A.HTTP_RESPONSE]))
            pr.has_http_response = True
        if self.rules[A.HTTP_AFTER_RESPONSE]:
            pr._after = _run_http(tuple(self.rules[A.HTTP_AFTER_RESPONSE]))
            pr.has_http_after_response = True
        for ruleset, attr in (
            (A.TCP_CONNECTION, "tcp_connection"),
            (A.TCP_SESSION, "tcp_session"),
            (A.TCP_CONTENT, "tcp_content"),
            (A.TCP_RESPONSE, "tcp_response"),
        ):
            if self.rules[ruleset]:
                setattr(pr, attr, _run_tcp(tuple(self.rules[ruleset])))
                setattr(pr, "has_" + attr, True)
        if self.rules[A.TCP_CONTENT]:
            pr.tcp_content_wait = _tcp_stepper(tuple(self.rules[A.TCP_CONTENT]))
        pr._use_backends = tuple(self.use_backends)
        pr.has_use_backend = bool(self.use_backends)
        pr._use_servers = tuple(self.use_servers)
        pr.has_use_server = bool(self.use_servers)
        pr.extra = self.extra
        return pr


def _conflict_warning(
    uses: list[tuple[str, list[tuple[str, frozenset]]]], places: int, tcp_ruleset: str | None
) -> str | None:
    """HAProxy's warning for the first ACL of a condition that can never match at
    ``places`` (every keyword unusable there), else for the first keyword that cannot;
    None when all work.  tcp rules word it their own way (``tcp_ruleset``)."""
    where = S.place_name(places)
    within = f" in '{tcp_ruleset}'" if tcp_ruleset else ""
    for desc, kws in uses:
        if not any(S.usable(needs, places) for _, needs in kws):
            if desc == "anonymous acl":
                return (
                    f"anonymous acl will never match{within} because it uses keyword '{kws[0][0]}' "
                    f"which is incompatible with '{where}'"
                )
            return f"{desc} will never match{within} because it only involves keywords that are incompatible with '{where}'"
    for desc, kws in uses:
        kw = next((k for k, needs in kws if not S.usable(needs, places)), None)
        if kw is not None:
            if desc == "anonymous acl":
                return f"anonymous acl involves keyword '{kw}' which is incompatible with '{where}'"
            plural = "" if tcp_ruleset else "s"
            return f"{desc} involves keyword{plural} '{kw}' which is incompatible with '{where}'"
    return None


def _dot(message: str) -> str:
    """HAProxy ends these messages with a dot after the detail (which may have its own)."""
    return message.rstrip() + "."


def compile_proxy(
    proxy: Any, tables: Mapping[str, object], config: Any = None, diagnostics: list[Diagnostic] | None = None
) -> ProxyRules:
    """Compile one proxy's rules; raises `ConfigError` when any alert was found."""
    load_features()
    diags: list[Diagnostic] = []
    pr = _ProxyCompiler(config, proxy, tables, diags).compile()
    if diagnostics is not None:
        diagnostics.extend(d for d in diags if d.severity != ALERT)
    alerts = [d for d in diags if d.severity == ALERT]
    if alerts:
        raise ConfigError(diags)
    return pr


def compile_rules(
    config: Any,
    tables: Mapping[str, object],
    diagnostics: list[Diagnostic] | None = None,
    rng: Any = None,
    backends: Mapping[str, object] | None = None,
) -> dict[str, ProxyRules]:
    """Proxy name -> `ProxyRules` for every frontend, backend and listen of ``config``.

    Raises `ConfigError` carrying every diagnostic (alerts and warnings) when any
    rule cannot be compiled; warnings of a successful compile go to ``diagnostics``.
    ``rng`` is the `random.Random` that ``rand()`` uses (a fixed seed when omitted).
    ``backends`` maps backend names to their runtime objects (``servers`` with an ``up``
    flag) for ``nbsrv()``; it is read at request time, so it may be filled afterwards.
    """
    load_features()
    diags: list[Diagnostic] = []
    late: list[Diagnostic] = []
    out: dict[str, ProxyRules] = {}
    for proxy in config.proxies:
        if proxy.kind == "defaults":
            continue
        out[proxy.name] = _ProxyCompiler(config, proxy, tables, diags, rng, backends, late).compile()
    diags.extend(late)
    if any(d.severity == ALERT for d in diags):
        raise ConfigError(diags)
    if diagnostics is not None:
        diagnostics.extend(diags)
    return out


def placeholder_tables(config: Any) -> dict[str, object]:
    """Table name -> its `TableSpec`, standing in for runtime tables in check mode."""
    return {spec.name: spec for spec in config.tables()}


def check_rules(config: Any) -> list[Diagnostic]:
    """Every problem (alerts and warnings) compiling ``config``'s rules would report."""
    diags: list[Diagnostic] = []
    try:
        compile_rules(config, placeholder_tables(config), diags)
    except ConfigError as e:
        return list(e.diagnostics)
    return diags
