"""Owns the catalogue of HAProxy 2.6 configuration keywords and minilb's stance on each.

Every keyword of configuration.txt sections 3 (global, peers) and 4.1 (the proxy
keyword matrix) is listed with the section kinds that allow it and a status:

- ``supported``: minilb implements it (a handler in ``parse_global``,
  ``parse_proxy`` or ``parse_peers`` reads it; a test checks both sides agree);
- ``ignored``: accepted silently because it only tunes something minilb does not
  have (CPU pinning, polling back-ends, splice, socket buffer sizes...);
- ``unsupported``: HAProxy 2.6 knows it, minilb does not implement it: a warning
  ``'KEYWORD' is not supported by minilb and is ignored.`` names it and its line;
- ``removed``: HAProxy 2.6 itself refuses it (legacy syntax): an alert with HAProxy's
  advice.

A word that is none of these is an alert with a did-you-mean suggestion.
Multi-word keywords (``timeout client``, ``option httplog``, ``stats socket``) are
looked up by their two first words.  Whole sections minilb does not implement
(`UNIMPLEMENTED_SECTIONS`) are skipped with one warning per section.
"""

from __future__ import annotations

import difflib

import attrs

SUPPORTED = "supported"
IGNORED = "ignored"
UNSUPPORTED = "unsupported"
REMOVED = "removed"

PROXY_KINDS = ("defaults", "frontend", "listen", "backend")
SECTION_KINDS = ("global", *PROXY_KINDS, "peers")

#: Sections HAProxy 2.6 knows that minilb parses and ignores (one warning each).
UNIMPLEMENTED_SECTIONS = (
    "userlist",
    "resolvers",
    "mailers",
    "cache",
    "program",
    "ring",
    "http-errors",
    "fcgi-app",
    "log-forward",
)

#: Words after which a keyword takes a sub-keyword (``timeout client``).
COMPOUND_HEADS = frozenset(
    {
        "option",
        "timeout",
        "stats",
        "http-check",
        "tcp-check",
        "tcp-request",
        "tcp-response",
        "capture",
        "email-alert",
        "stick",
        "monitor",
        "persist",
        "rate-limit",
        "external-check",
        "declare",
    }
)


@attrs.frozen
class Keyword:
    name: str
    sections: frozenset[str]
    status: str
    note: str = ""
    #: accepts the ``no`` / ``default`` prefixes (the matrix's "(*)")
    negatable: bool = False
    #: allowed in named defaults sections only (the matrix's "(!)")
    named_defaults_only: bool = False


# name | sections (d=defaults, D=named defaults only, f, l, b) | flags
# The section columns are HAProxy 2.6's keyword matrix (configuration.txt 4.1).
_PROXY_MATRIX = """
acl|Dflb
backlog|dfl
balance|dlb
bind|fl
bind-process|dflb
capture cookie|fl
capture request header|fl
capture response header|fl
clitcpka-cnt|dfl
clitcpka-idle|dfl
clitcpka-intvl|dfl
compression|dflb
cookie|dlb
declare capture|fl
default-server|dlb
default_backend|dfl
description|flb
disabled|dflb
dispatch|lb
dynamic-cookie-key|dlb
email-alert from|dflb
email-alert level|dflb
email-alert mailers|dflb
email-alert myhostname|dflb
email-alert to|dflb
enabled|dflb
errorfile|dflb
errorfiles|dflb
errorloc|dflb
errorloc302|dflb
errorloc303|dflb
error-log-format|dfl
force-persist|lb
filter|flb
fullconn|dlb
hash-balance-factor|db
hash-type|dlb
http-after-response|Dflb
http-check comment|dlb
http-check connect|dlb
http-check disable-on-404|dlb
http-check expect|dlb
http-check send|dlb
http-check send-state|dlb
http-check set-var|dlb
http-check set-var-fmt|dlb
http-check unset-var|dlb
http-error|dflb
http-request|Dflb
http-response|Dflb
http-reuse|dlb
http-send-name-header|dlb
id|flb
ignore-persist|lb
load-server-state-from-file|dlb
log|dflb|neg
log-format|dfl
log-format-sd|dfl
log-tag|dflb
max-keep-alive-queue|dlb
max-session-srv-conns|dfl
maxconn|dfl
mode|dflb
monitor fail|fl
monitor-uri|dfl
option abortonclose|dlb|neg
option accept-invalid-http-request|dfl|neg
option accept-invalid-http-response|dlb|neg
option allbackups|dlb|neg
option checkcache|dlb|neg
option clitcpka|dfl|neg
option contstats|dfl|neg
option disable-h2-upgrade|dfl|neg
option dontlog-normal|dfl|neg
option dontlognull|dfl|neg
option forwardfor|dflb
option h1-case-adjust-bogus-client|dfl|neg
option h1-case-adjust-bogus-server|dlb|neg
option http-buffer-request|dflb|neg
option http-ignore-probes|dfl|neg
option http-keep-alive|dflb|neg
option http-no-delay|dflb|neg
option http-pretend-keepalive|dlb|neg
option http-restrict-req-hdr-names|dflb
option http-server-close|dflb|neg
option http-use-proxy-header|dfl|neg
option http_proxy|dflb|neg
option httpchk|dlb
option httpclose|dflb|neg
option httplog|dflb
option httpslog|dfl
option independent-streams|dflb|neg
option ldap-check|dlb
option external-check|dlb
option log-health-checks|dlb|neg
option log-separate-errors|dfl|neg
option logasap|dfl|neg
option mysql-check|dlb
option nolinger|dflb|neg
option originalto|dflb
option persist|dlb|neg
option pgsql-check|dlb
option prefer-last-server|dlb|neg
option redispatch|dlb|neg
option redis-check|dlb
option smtpchk|dlb
option socket-stats|dfl|neg
option splice-auto|dflb|neg
option splice-request|dflb|neg
option splice-response|dflb|neg
option spop-check|dlb
option srvtcpka|dlb|neg
option ssl-hello-chk|dlb
option tcp-check|dlb
option tcp-smart-accept|dfl|neg
option tcp-smart-connect|dlb|neg
option tcpka|dflb
option tcplog|dflb
option transparent|dlb|neg
option idle-close-on-response|dfl|neg
external-check command|dlb
external-check path|dlb
persist rdp-cookie|dlb
rate-limit sessions|dfl
redirect|flb
retries|dlb
retry-on|dlb
server|lb
server-state-file-name|dlb
server-template|lb
source|dlb
srvtcpka-cnt|dlb
srvtcpka-idle|dlb
srvtcpka-intvl|dlb
stats admin|flb
stats auth|dflb
stats enable|dflb
stats hide-version|dflb
stats http-request|flb
stats realm|dflb
stats refresh|dflb
stats scope|dflb
stats show-desc|dflb
stats show-legends|dflb
stats show-modules|dflb
stats show-node|dflb
stats uri|dflb
stick match|lb
stick on|lb
stick store-request|lb
stick store-response|lb
stick-table|flb
tcp-check comment|dlb
tcp-check connect|dlb
tcp-check expect|dlb
tcp-check send|dlb
tcp-check send-lf|dlb
tcp-check send-binary|dlb
tcp-check send-binary-lf|dlb
tcp-check set-var|dlb
tcp-check set-var-fmt|dlb
tcp-check unset-var|dlb
tcp-request connection|Dfl
tcp-request content|Dflb
tcp-request inspect-delay|Dflb
tcp-request session|Dfl
tcp-response content|Dlb
tcp-response inspect-delay|Dlb
timeout check|dlb
timeout client|dfl
timeout client-fin|dfl
timeout connect|dlb
timeout http-keep-alive|dflb
timeout http-request|dflb
timeout queue|dlb
timeout server|dlb
timeout server-fin|dlb
timeout tarpit|dflb
timeout tunnel|dlb
transparent|dlb
unique-id-format|dfl
unique-id-header|dfl
use_backend|fl
use-fcgi-app|lb
use-server|lb
"""

#: What minilb implements in proxies, with a short note for the README table.
_PROXY_SUPPORTED = {
    "acl": "kept as words, compiled by the rule engine",
    "balance": "roundrobin static-rr leastconn first source uri url_param hdr() random",
    "bind": "TCP/unix/abns/fd@ addresses; ssl crt ca-file verify alpn ciphers...",
    "default-server": "",
    "default_backend": "",
    "description": "",
    "disabled": "",
    "enabled": "",
    "errorfile": "file read at load time",
    "fullconn": "",
    "hash-type": "",
    "http-after-response": "",
    "http-check expect": "status, rstatus, string",
    "http-check send": "meth, uri, ver, hdr",
    "http-request": "",
    "http-response": "",
    "http-reuse": "",
    "id": "",
    "log": "",
    "log-format": "parsed; lines keep the httplog/tcplog format (a warning says so)",
    "maxconn": "",
    "mode": "http, tcp",
    "monitor-uri": "",
    "option abortonclose": "",
    "option dontlognull": "",
    "option forwardfor": "except, header, if-none",
    "option http-keep-alive": "",
    "option http-server-close": "",
    "option httpchk": "",
    "option httpclose": "",
    "option httplog": "",
    "option log-separate-errors": "",
    "option redispatch": "",
    "option tcplog": "",
    "redirect": "",
    "retries": "",
    "server": "weight backup disabled maxconn check inter rise fall ssl sni...",
    "stick match": "",
    "stick on": "",
    "stick store-request": "",
    "stick store-response": "",
    "stick-table": "every 2.6 data type",
    "tcp-request connection": "",
    "tcp-request content": "",
    "tcp-request inspect-delay": "",
    "tcp-request session": "",
    "tcp-response content": "",
    "tcp-response inspect-delay": "",
    "timeout check": "",
    "timeout client": "",
    "timeout client-fin": "",
    "timeout connect": "",
    "timeout http-keep-alive": "",
    "timeout http-request": "",
    "timeout queue": "",
    "timeout server": "",
    "timeout server-fin": "",
    "timeout tarpit": "",
    "timeout tunnel": "",
    "use_backend": "",
    "use-server": "",
}

#: Accepted silently: knobs of machinery minilb does not have, harmless to drop.
_PROXY_IGNORED = {
    "backlog": "the OS default backlog is used",
    "clitcpka-cnt": "TCP keep-alive tuning",
    "clitcpka-idle": "TCP keep-alive tuning",
    "clitcpka-intvl": "TCP keep-alive tuning",
    "srvtcpka-cnt": "TCP keep-alive tuning",
    "srvtcpka-idle": "TCP keep-alive tuning",
    "srvtcpka-intvl": "TCP keep-alive tuning",
    "option contstats": "statistics detail",
    "option socket-stats": "statistics detail",
    "option splice-auto": "kernel splicing",
    "option splice-request": "kernel splicing",
    "option splice-response": "kernel splicing",
    "option tcp-smart-accept": "TCP tuning",
    "option tcp-smart-connect": "TCP tuning",
    "option http-no-delay": "TCP tuning",
    "option idle-close-on-response": "",
    "option prefer-last-server": "connections are pooled anyway",
}

#: Global keywords minilb implements (configuration.txt section 3).
_GLOBAL_SUPPORTED = {
    "ca-base": "",
    "crt-base": "",
    "daemon": "",
    "hard-stop-after": "",
    "localpeer": "",
    "log": "",
    "master-worker": "",
    "maxconn": "",
    "nbthread": "minilb runs one thread per worker",
    "pidfile": "",
    "presetenv": "",
    "quiet": "",
    "resetenv": "",
    "setenv": "",
    "ssl-default-bind-ciphers": "",
    "ssl-default-bind-ciphersuites": "",
    "ssl-default-bind-options": "",
    "ssl-default-server-ciphers": "",
    "ssl-default-server-ciphersuites": "",
    "ssl-default-server-options": "",
    "ssl-server-verify": "",
    "stats socket": "unix and TCP, mode, level, expose-fd listeners",
    "stats timeout": "",
    "stats maxconn": "",
    "tune.bufsize": "",
    "tune.http.maxhdr": "",
    "tune.maxrewrite": "",
    "tune.peers.max-updates-at-once": "",
    "unsetenv": "",
    "zero-warning": "",
}

_GLOBAL_IGNORED = {
    "busy-polling": "polling tuning",
    "cpu-map": "CPU pinning",
    "description": "",
    "fd-hard-limit": "",
    "max-spread-checks": "",
    "maxpipes": "kernel splicing",
    "no-memory-trimming": "",
    "node": "",
    "noepoll": "polling tuning",
    "noevports": "polling tuning",
    "nogetaddrinfo": "",
    "nokqueue": "polling tuning",
    "nopoll": "polling tuning",
    "noreuseport": "",
    "nosplice": "kernel splicing",
    "numa-cpu-mapping": "CPU pinning",
    "profiling.tasks": "",
    "set-dumpable": "",
    "spread-checks": "",
    "strict-limits": "",
    "ulimit-n": "the process limit is used as is",
    "tune.*": "every other tune.* knob",
}

# Global keywords of configuration.txt section 3 (3.1 to 3.3), plus the stats sub-keywords.
_GLOBAL_ALL = """
51degrees-cache-size 51degrees-data-file 51degrees-property-name-list
51degrees-property-separator ca-base chroot cluster-secret cpu-map crt-base daemon
default-path description deviceatlas-json-file deviceatlas-log-level
deviceatlas-properties-cookie deviceatlas-separator expose-experimental-directives
external-check fd-hard-limit gid grace group h1-accept-payload-with-any-method
h1-case-adjust h1-case-adjust-file h2-workaround-bogus-websocket-clients
hard-stop-after httpclient.resolvers.id httpclient.resolvers.prefer
httpclient.ssl.ca-file httpclient.ssl.verify insecure-fork-wanted
insecure-setuid-wanted issuers-chain-path localpeer log log-send-hostname log-tag
lua-load lua-load-per-thread lua-prepend-path master-worker mworker-max-reloads
nbthread node numa-cpu-mapping pidfile pp2-never-send-local presetenv resetenv
set-dumpable set-var setenv ssl-default-bind-ciphers ssl-default-bind-ciphersuites
ssl-default-bind-curves ssl-default-bind-options ssl-default-server-ciphers
ssl-default-server-ciphersuites ssl-default-server-options ssl-dh-param-file
ssl-propquery ssl-provider ssl-provider-path ssl-server-verify
ssl-skip-self-issued-ca strict-limits uid ulimit-n unix-bind unsetenv user
wurfl-cache-size wurfl-data-file wurfl-information-list
wurfl-information-list-separator busy-polling max-spread-checks maxcompcpuusage
maxcomprate maxconn maxconnrate maxpipes maxsessrate maxsslconn maxsslrate
maxzlibmem no-memory-trimming noepoll noevports nogetaddrinfo nokqueue nopoll
noreuseport nosplice profiling.tasks server-state-base server-state-file
spread-checks ssl-engine ssl-mode-async quiet zero-warning debug close-spread-time profiling.memory
set-var-fmt ssl-load-extra-del-ext ssl-load-extra-files thread-group thread-groups tune.h2.max-frame-size
tune.listener.multi-queue wurfl-patch-file
stats~socket stats~timeout stats~maxconn stats~bind-process
tune.buffers.limit tune.buffers.reserve tune.bufsize tune.comp.maxlevel
tune.fail-alloc tune.fd.edge-triggered tune.h2.header-table-size
tune.h2.initial-window-size tune.h2.max-concurrent-streams tune.http.cookielen
tune.http.logurilen tune.http.maxhdr tune.idle-pool.shared tune.idletimer
tune.lua.forced-yield tune.lua.maxmem tune.lua.service-timeout
tune.lua.session-timeout tune.lua.task-timeout tune.maxaccept tune.maxpollevents
tune.maxrewrite tune.pattern.cache-size tune.peers.max-updates-at-once tune.pipesize
tune.pool-high-fd-ratio tune.pool-low-fd-ratio tune.quic.frontend.conn-tx-buffers.limit
tune.quic.frontend.max-idle-timeout tune.quic.frontend.max-streams-bidi
tune.quic.retry-threshold tune.rcvbuf.client tune.rcvbuf.server tune.recv_enough
tune.runqueue-depth tune.sched.low-latency tune.sndbuf.client tune.sndbuf.server
tune.ssl.cachesize tune.ssl.capture-buffer-size tune.ssl.capture-cipherlist-size
tune.ssl.default-dh-param tune.ssl.force-private-cache tune.ssl.hard-maxrecord
tune.ssl.keylog tune.ssl.lifetime tune.ssl.maxrecord tune.ssl.ssl-ctx-cache-size
tune.vars.global-max-size tune.vars.proc-max-size tune.vars.reqres-max-size
tune.vars.sess-max-size tune.vars.txn-max-size tune.zlib.memlevel tune.zlib.windowsize
"""

#: Global keywords that may take the ``no`` prefix in HAProxy 2.6.
_GLOBAL_NEGATABLE = frozenset(
    {"log", "busy-polling", "set-dumpable", "strict-limits", "insecure-fork-wanted", "numa-cpu-mapping"}
)

_PEERS = {
    "peer": (SUPPORTED, "NAME ADDR [server options]"),
    "bind": (SUPPORTED, "ADDR [bind options]"),
    "server": (SUPPORTED, "NAME [ADDR] [server options]"),
    "default-server": (SUPPORTED, ""),
    "default-bind": (SUPPORTED, ""),
    "table": (SUPPORTED, "NAME type ... (referenced as SECTION/NAME)"),
    "disabled": (SUPPORTED, ""),
    "enabled": (SUPPORTED, ""),
    "log": (UNSUPPORTED, ""),
}

#: Legacy keywords HAProxy 2.6 refuses, with its advice (alert).
REMOVED_PROXY = {
    "contimeout": "the 'contimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout connect'.",
    "clitimeout": "the 'clitimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout client'.",
    "srvtimeout": "the 'srvtimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout server'.",
    "redispatch": "keyword 'redispatch' directive is not supported anymore since HAProxy 2.1. Use 'option redispatch'.",
    "block": "The 'block' directive is not supported anymore since HAProxy 2.1. "
    "Use 'http-request deny' which uses the exact same syntax.",
}
for _name, _repl in (
    ("reqadd", "http-request add-header"),
    ("reqallow", "http-request allow"),
    ("reqdel", "http-request del-header"),
    ("reqdeny", "http-request deny"),
    ("reqiallow", "http-request allow"),
    ("reqidel", "http-request del-header"),
    ("reqideny", "http-request deny"),
    ("reqipass", "http-request allow"),
    ("reqirep", "http-request replace-header"),
    ("reqisetbe", "use_backend"),
    ("reqitarpit", "http-request tarpit"),
    ("reqpass", "http-request allow"),
    ("reqrep", "http-request replace-header"),
    ("reqsetbe", "use_backend"),
    ("reqtarpit", "http-request tarpit"),
    ("rspadd", "http-response add-header"),
    ("rspdel", "http-response del-header"),
    ("rspdeny", "http-response deny"),
    ("rspidel", "http-response del-header"),
    ("rspideny", "http-response deny"),
    ("rspirep", "http-response replace-header"),
    ("rsprep", "http-response replace-header"),
):
    REMOVED_PROXY[_name] = (
        f"The '{_name}' directive is not supported anymore since HAProxy 2.1. Use '{_repl}' instead."
    )

REMOVED_OPTIONS = {
    "forceclose": "option 'forceclose' is not supported any more since HAProxy 2.0, please just remove it, "
    "or use 'option httpclose' if absolutely needed.",
    "http-tunnel": "option 'http-tunnel' is not supported any more since HAProxy 2.1, please just remove it, "
    "it shouldn't be needed.",
}
REMOVED_TIMEOUTS = {
    "clitimeout": "the 'clitimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout client'.",
    "srvtimeout": "the 'srvtimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout server'.",
    "contimeout": "the 'contimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout connect'.",
}
REMOVED_GLOBAL = {
    "nbproc": "nbproc is not supported any more since HAProxy 2.5. Threads will automatically be used "
    "on multi-processor machines if available.",
}

_SECTION_CODES = {"d": "defaults", "D": "defaults", "f": "frontend", "l": "listen", "b": "backend"}


def _build() -> dict[str, dict[str, Keyword]]:
    registry: dict[str, dict[str, Keyword]] = {kind: {} for kind in SECTION_KINDS}
    for row in _PROXY_MATRIX.strip().splitlines():
        parts = row.split("|")
        name, codes = parts[0], parts[1]
        sections = frozenset(_SECTION_CODES[c] for c in codes)
        if name in _PROXY_SUPPORTED:
            status, note = SUPPORTED, _PROXY_SUPPORTED[name]
        elif name in _PROXY_IGNORED:
            status, note = IGNORED, _PROXY_IGNORED[name]
        else:
            status, note = UNSUPPORTED, ""
        kw = Keyword(
            name, sections, status, note, negatable="neg" in parts[2:], named_defaults_only="D" in codes
        )
        # every proxy kind knows every proxy keyword (misplaced ones are warned about)
        for kind in PROXY_KINDS:
            registry[kind][name] = kw
    for name, message in REMOVED_PROXY.items():
        kw = Keyword(name, frozenset(PROXY_KINDS), REMOVED, message)
        for kind in PROXY_KINDS:
            registry[kind][name] = kw
    for name in _GLOBAL_ALL.split():
        name = name.replace("~", " ")
        if name in _GLOBAL_SUPPORTED:
            status, note = SUPPORTED, _GLOBAL_SUPPORTED[name]
        elif name in _GLOBAL_IGNORED:
            status, note = IGNORED, _GLOBAL_IGNORED[name]
        elif name.startswith("tune."):
            status, note = IGNORED, ""
        else:
            status, note = UNSUPPORTED, ""
        registry["global"][name] = Keyword(
            name, frozenset({"global"}), status, note, negatable=name in _GLOBAL_NEGATABLE
        )
    for name, message in REMOVED_GLOBAL.items():
        registry["global"][name] = Keyword(name, frozenset({"global"}), REMOVED, message)
    for name, (status, note) in _PEERS.items():
        registry["peers"][name] = Keyword(name, frozenset({"peers"}), status, note)
    return registry


REGISTRY: dict[str, dict[str, Keyword]] = _build()


def lookup(kind: str, words: tuple[str, ...] | list[str]) -> Keyword | None:
    """The keyword a line starts with in a section of ``kind`` (two-word keywords first)."""
    table = REGISTRY[kind]
    if words[0] in COMPOUND_HEADS:
        for n in (3, 2):  # `capture request header`, then `timeout client`
            if len(words) >= n:
                kw = table.get(" ".join(words[:n]))
                if kw is not None:
                    return kw
        if len(words) >= 2 and "(" in words[1]:  # `http-check set-var(txn.x) ...`
            kw = table.get(f"{words[0]} {words[1].split('(', 1)[0]}")
            if kw is not None:
                return kw
    return table.get(words[0])


def is_compound_head(kind: str, word: str) -> bool:
    prefix = word + " "
    return any(name.startswith(prefix) for name in REGISTRY[kind])


def suggest(word: str, candidates) -> str | None:
    """The closest known word, as HAProxy's "did you mean ... maybe ?" hint."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def subkeywords(kind: str, head: str) -> list[str]:
    prefix = head + " "
    return [name[len(prefix) :] for name in REGISTRY[kind] if name.startswith(prefix)]


def first_words(kind: str) -> set[str]:
    return {name.split(" ", 1)[0] for name in REGISTRY[kind]}
