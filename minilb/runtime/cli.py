"""Owns the stats socket command language: tokenising a command line the way HAProxy's
CLI does, permission levels, and the stick-table commands (``show table``,
``set table``, ``clear table``) with HAProxy 2.6's output byte for byte.

Pure: no sockets and no Twisted.  A `CommandProcessor` holds the tables and the
registered commands; each connection gets a `CliSession` (its level and prompt
mode).  `CliSession.handle_line(line)` returns the bytes to send and whether to
close the connection afterwards; the Twisted adapter (`stats_socket`) only moves
lines and bytes.  Other features add their own commands (``show peers``, ``show
info``...) with `CommandProcessor.register`.

Every command's output ends with an empty line; in prompt mode a ``"> "`` follows.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator

import attrs

from minilb.stick.datatypes import BY_NAME
from minilb.stick.table import InvalidKey, StickTable

LEVELS = {"user": 0, "operator": 1, "admin": 2}
MAX_ARGS = 64
MAX_FILTERS = 4
DUMP_CHUNK = 256  # entry lines per chunk of a table dump

PERMISSION_DENIED = "Permission denied\n"


class Reply(Exception):
    """Raised by a handler to answer with an error message (HAProxy's ``cli_err``)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@attrs.frozen
class Command:
    words: tuple[str, ...]  # the keywords that select it: ("show", "table")
    usage: str  # "show table <table> [<filter>]*"
    help: str
    handler: Callable  # (session, args: list[str]) -> str
    level: str = "user"  # lowest level allowed to run it


def tokenize(line: str) -> list[list[str]]:
    """Split a line into commands (``;``) and words (spaces/tabs); a backslash
    escapes the next character (``\\;`` and ``\\ `` are literal)."""
    if "\\" not in line:  # no escape: the same split at C speed (big ``set table`` batches)
        return [[w for w in cmd.replace("\t", " ").split(" ") if w] for cmd in line.split(";")]
    return _tokenize_escaped(line)


def _tokenize_escaped(line: str) -> list[list[str]]:
    """`tokenize` character by character (what a line with a backslash needs)."""
    commands: list[list[str]] = []
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n:
            word.append(line[i + 1])
            in_word = True
            i += 2
            continue
        if ch in " \t":
            if in_word:
                words.append("".join(word))
                word = []
                in_word = False
        elif ch == ";":
            if in_word:
                words.append("".join(word))
                word = []
                in_word = False
            commands.append(words)
            words = []
        else:
            word.append(ch)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(word))
    commands.append(words)
    return commands


def _strl2llrc(text: str) -> int | None:
    """HAProxy's ``strl2llrc``: an optional ``-`` then decimal digits only."""
    body = text[1:] if text.startswith("-") else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    return int(text)


def _strtoul_key(text: str) -> int | None:
    """An integer table key as HAProxy's CLI reads it (``strtoul`` base 10): leading
    blanks and a sign allowed, trailing garbage ignored, no digits or > 2**32-1 refused."""
    s = text.lstrip(" \t\n\r\f\v")
    neg = False
    if s[:1] in ("+", "-"):
        neg = s[0] == "-"
        s = s[1:]
    digits = ""
    for ch in s:
        if not ("0" <= ch <= "9"):
            break
        digits += ch
    if not digits:
        return None
    value = int(digits)
    if neg and value:
        value = 2**64 - value  # strtoul wraps negative numbers
    return value if value <= 0xFFFFFFFF else None


_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "le": lambda a, b: a <= b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "gt": lambda a, b: a > b,
}


class CommandProcessor:
    """The commands and stick tables of one process; shared by all CLI connections.

    ``tables`` is an iterable of `StickTable` in configuration order (``show
    table`` lists them last declared first, as HAProxy does).
    """

    def __init__(self, tables: Iterable[StickTable] = ()):
        self.tables: dict[str, StickTable] = {}
        self.commands: list[Command] = []
        for table in tables:
            self.add_table(table)
        self._register_builtins()

    def add_table(self, table: StickTable) -> None:
        self.tables[table.name] = table

    def set_tables(self, tables: Iterable[StickTable]) -> None:
        self.tables = {t.name: t for t in tables}

    def register(self, words: str, usage: str, help: str, handler: Callable, level: str = "user") -> None:
        """Add a command: ``words`` selects it (``"show peers"``), ``usage`` and ``help``
        form its help line, ``handler(session, args)`` returns its output text (or
        raises `Reply`), ``level`` is the lowest level allowed to run it."""
        self.commands.append(Command(tuple(words.split()), usage, help, handler, level))

    def session(self, level: str = "admin") -> CliSession:
        return CliSession(self, level)

    # ------------------------------------------------------------------ help
    def help_lines(self, level: str) -> list[str]:
        """Every command's help line (HAProxy 2.6 lists them all at every level)."""
        lines = [
            _help_line(c.usage, c.help)
            for c in sorted(self.commands, key=lambda c: c.usage)
            if c.words[0] not in ("help", "prompt", "quit")
        ]
        lines += [_help_line(*pair) for pair in _ALWAYS]
        return lines

    def find(self, args: list[str]) -> Command | None:
        best = None
        for cmd in self.commands:
            n = len(cmd.words)
            if len(args) >= n and tuple(args[:n]) == cmd.words and (best is None or n > len(best.words)):
                best = cmd
        return best

    def suggestions(self, args: list[str], level: str) -> list[str]:
        """The closest commands to an unknown one (up to 5), then help/prompt/quit."""
        typed = " ".join(args)
        scored = []
        for cmd in self.commands:
            if cmd.words[0] in ("help", "prompt", "quit"):
                continue
            score = difflib.SequenceMatcher(None, typed, " ".join(cmd.words)).ratio()
            scored.append((-score, cmd.usage, cmd))
        scored.sort(key=lambda item: (item[0], item[1]))
        picked = sorted((c for _, _, c in scored[:5]), key=lambda c: c.usage)
        return [_help_line(c.usage, c.help) for c in picked] + [_help_line(*p) for p in _ALWAYS]

    # ------------------------------------------------------------------ built-in commands
    def _register_builtins(self) -> None:
        self.register(
            "show table",
            "show table <table> [<filter>]*",
            "report table usage stats or dump this table's contents (filter: data/key)",
            self._show_table,
        )
        self.register(
            "set table",
            "set table <table> key <k> [data.* <v>]*",
            "update or create a table entry's data",
            self._set_table,
        )
        self.register(
            "clear table",
            "clear table <table> [<filter>]*",
            "remove an entry from a table (filter: data/key)",
            self._clear_table,
        )
        self.register(
            "show cli level",
            "show cli level",
            "display the level of the current CLI session",
            self._show_level,
        )
        self.register(
            "operator", "operator", "lower the level of the current CLI session to operator", self._operator
        )
        self.register("user", "user", "lower the level of the current CLI session to user", self._user)

    def _show_level(self, sess: CliSession, args: list[str]) -> str:
        return sess.level + "\n"

    def _operator(self, sess: CliSession, args: list[str]) -> str:
        if LEVELS[sess.level] < LEVELS["operator"]:
            raise Reply(PERMISSION_DENIED)
        sess.level = "operator"
        return ""

    def _user(self, sess: CliSession, args: list[str]) -> str:
        sess.level = "user"
        return ""

    # ------------------------------------------------------------------ tables
    def _table_arg(self, args: list[str], action: str) -> StickTable | None:
        name = args[2] if len(args) > 2 else ""
        if not name:
            return None
        table = self.tables.get(name)
        if table is None:
            raise Reply("No such table\n")
        return table

    def _show_table(self, sess: CliSession, args: list[str]) -> str:
        table = self._table_arg(args, "show")
        if table is None:
            return "".join(_head(t) for t in reversed(list(self.tables.values())))
        return self._table_request(sess, table, args, "show")

    def _clear_table(self, sess: CliSession, args: list[str]) -> str:
        table = self._table_arg(args, "clear")
        if table is None:
            raise Reply(_ERR_ARGS["clear"])
        return self._table_request(sess, table, args, "clear")

    def _set_table(self, sess: CliSession, args: list[str]) -> str:
        table = self._table_arg(args, "set")
        if table is None:
            raise Reply(_ERR_ARGS["set"])
        return self._table_request(sess, table, args, "set")

    def _table_request(self, sess: CliSession, table: StickTable, args: list[str], action: str) -> str:
        arg3 = _arg(args, 3)
        if arg3 == "key":
            return self._per_key(sess, table, args, action)
        filters: list[tuple[str, Callable, int]] = []
        if arg3.startswith("data."):
            i = 0
            while i < MAX_FILTERS:
                base = 3 + 3 * i
                if i > 0 and not _arg(args, base):
                    break
                name = _arg(args, base)[5:]
                if name not in BY_NAME:
                    raise Reply(f"Filter entry #{i + 1}: Unknown data type\n")
                if name not in table.columns:
                    raise Reply(f"Filter entry #{i + 1}: Data type not stored in this table\n")
                op = _OPS.get(_arg(args, base + 1))
                if op is None:
                    raise Reply(
                        f"Filter entry #{i + 1}: Require and operator among "
                        '"eq", "ne", "le", "ge", "lt", "gt"\n'
                    )
                value = _strl2llrc(_arg(args, base + 2))
                if value is None:
                    raise Reply(f"Filter entry #{i + 1}: Require a valid integer value to compare against\n")
                filters.append((name, op, value))
                i += 1
            if _arg(args, 3 + 3 * i):
                raise Reply(
                    f"Detected extra data in filter, {3 + 3 * i + 1}th word of input, after '{_arg(args, 2 + 3 * i)}'\n"
                )
        elif arg3:
            raise Reply(_ERR_ARGS[action])
        can_see = LEVELS[sess.level] >= LEVELS["operator"]
        if action != "show":
            # HAProxy 2.6 walks the table for every action but "show" as a clear,
            # so "set table NAME" without a key empties it too

            if can_see:
                for row in table.sorted_rows():
                    if table.ref_count(row) == 0 and _matches(table, row, filters):
                        table.remove(row)
            return ""
        if not can_see:
            return _head(table) + "# contents not dumped due to insufficient privileges\n"
        return self._dump(table, filters)

    def _dump(self, table: StickTable, filters: list) -> Iterator[str]:
        """``show table NAME``: the header, then the entries in chunks of `DUMP_CHUNK`
        lines, produced as the connection drains (a big table is never one string)."""
        yield _head(table)
        lines: list[str] = []
        for row in table.sorted_rows():
            if table.lookup(table._keys[row]) != row:
                continue  # removed while the dump was paused
            if _matches(table, row, filters):
                lines.append(self.entry_line(table, row))
                if len(lines) >= DUMP_CHUNK:
                    yield "".join(lines)
                    lines = []
        if lines:
            yield "".join(lines)

    def _per_key(self, sess: CliSession, table: StickTable, args: list[str], action: str) -> str:
        text = _arg(args, 4)
        if not text:
            raise Reply("Key value expected\n")
        key = _cli_key(table, text, action)
        if LEVELS[sess.level] < LEVELS["operator"]:
            raise Reply(PERMISSION_DENIED)
        if action == "show":
            row = table.lookup(key)
            if row is None:
                return ""
            return _head(table) + self.entry_line(table, row)
        if action == "clear":
            row = table.lookup(key)
            if row is None:
                return ""
            if not table.remove(row):
                raise Reply("Entry currently in use, cannot remove\n")
            return ""
        # set: the entry is created first, then each data.X VALUE pair applied in order
        row = table.get_or_create(key)
        if row is None:
            return ""
        table.ref(row)
        try:
            cur = 5
            while _arg(args, cur):
                word = _arg(args, cur)
                if not word.startswith("data."):
                    raise Reply('"data.<type>" followed by a value expected\n')
                name = word[5:]
                if name not in BY_NAME:
                    raise Reply("Unknown data type\n")
                if name not in table.columns:
                    raise Reply("Data type not stored in this table\n")
                value = _strl2llrc(_arg(args, cur + 1))
                if value is None:
                    raise Reply("Require a valid integer value to store\n")
                if BY_NAME[name].kind != "dict":
                    table.set(row, name, value)
                cur += 2
        finally:
            table.touch_local(row)  # haproxy touches the entry however the command ends
            table.release(row)
        return ""

    def entry_line(self, table: StickTable, row: int) -> str:
        """One entry as ``show table`` prints it."""
        parts = [
            f"0x{_fake_address(table, row):x}: key={table.key_to_text(table._keys[row])}"
            f" use={table.ref_count(row)} exp={table.expire_in(row)}"
        ]
        for name, col in table.columns.items():
            dt = col.dt
            if dt.is_array:
                prefix, sep, suffix = name.partition("_")
                for idx in range(col.count):
                    label = f"{prefix}{idx}{sep}{suffix}"
                    if dt.is_rate:
                        label += f"({col.period})"
                    parts.append(f" {label}={table.get(row, name, idx)}")
                continue
            label = f"{name}({col.period})" if dt.is_rate else name
            value = table.get(row, name)
            if dt.kind == "dict":
                value = "-" if value is None else value
            parts.append(f" {label}={value}")
        parts.append("\n")
        return "".join(parts)


def _arg(args: list[str], i: int) -> str:
    return args[i] if i < len(args) else ""


def _head(table: StickTable) -> str:
    return f"# table: {table.name}, type: {table.key_type}, size:{table.size}, used:{table.used}\n"


def _matches(table: StickTable, row: int, filters: list[tuple[str, Callable, int]]) -> bool:
    for name, op, value in filters:
        data = table.get(row, name)
        if not isinstance(data, int):
            data = 0  # server_key compares as 0
        if not op(data, value):
            return False
    return True


def _inetaddr_host(text: str) -> int:
    """HAProxy's unchecked dotted-quad reader used for ip keys on the CLI: up to four
    groups of digits separated by dots, each taken from its last three digits,
    stopping at the first other character ("5abc" is 5.0.0.0, "::1" is 0.0.0.0)."""
    value = 0
    shift = 24
    pos = 0
    n = len(text)
    while True:
        start = pos
        while pos < n and "0" <= text[pos] <= "9":
            pos += 1
        if pos > start:
            value += int(text[max(start, pos - 3) : pos]) << shift
        if not shift or pos >= n or text[pos] != ".":
            break
        shift -= 8
        pos += 1
    return value & 0xFFFFFFFF


def _cli_key(table: StickTable, text: str, action: str):
    kt = table.key_type
    if kt == "binary":
        raise Reply(_BINARY_KEYS[action])
    if kt == "ip":
        return _inetaddr_host(text)
    if kt == "integer":
        value = _strtoul_key(text)
        if value is None:
            raise Reply("Invalid key\n")
        return value
    try:
        return table.parse_cli_key(text)
    except InvalidKey:
        raise Reply("Invalid key\n") from None


def _fake_address(table: StickTable, row: int) -> int:
    """A stable pointer-looking number for an entry (HAProxy prints the entry's address)."""
    return 0x55D000000000 + (id(table) & 0xFFFFF) * 0x1000000 + row * 0x70


def _help_line(usage: str, text: str) -> str:
    return f"  {usage:<40}: {text}\n" if len(usage) < 40 else f"  {usage}: {text}\n"


_ALWAYS = (
    ("help [<command>]", "list matching or all commands"),
    ("prompt", "toggle interactive mode with prompt"),
    ("quit", "disconnect"),
)

_ERR_ARGS = {
    "show": 'Optional argument only supports "data.<store_data_type>" <operator> <value> and key <key>\n',
    "clear": 'Required arguments: <table> "data.<store_data_type>" <operator> <value> or <table> key <key>\n',
    "set": "Required arguments: <table> key <key> [data.<store_data_type> <value>]*\n",
}

_BINARY_KEYS = {
    "show": "Showing keys from tables of type other than ip, ipv6, string and integer is not supported\n",
    "clear": "Removing keys from tables of type other than ip, ipv6, string and integer is not supported\n",
    "set": "Inserting keys into tables of type other than ip, ipv6, string and integer is not supported\n",
}


class CliSession:
    """One stats socket connection: its level and whether it is in prompt mode."""

    def __init__(self, processor: CommandProcessor, level: str = "admin"):
        self.processor = processor
        self.level = level
        self.prompt = False
        self.quit = False  # set once "quit" was read: nothing more is run
        self.closing = False  # after the last line: close the connection

    def handle_line(self, line: str) -> tuple[str, bool]:
        """Run one received line; returns (output, close).  Non-interactive sessions
        close after the line; ``quit`` closes at once."""
        output = "".join(self.iter_line(line))
        return output, self.closing

    def iter_line(self, line: str) -> Iterator[str]:
        """The output of one line as chunks, produced lazily (the adapter writes each
        as the connection drains); `closing` tells, once exhausted, whether the
        connection must close after it."""
        self.closing = False
        for i, args in enumerate(tokenize(line)):
            if not args and i > 0:
                continue  # a trailing ";" adds no command
            if args[:1] == ["quit"]:
                self.quit = self.closing = True
                return
            was_prompt = self.prompt
            result = self.run(args)
            if isinstance(result, str):
                yield result
            else:
                yield from result
            yield "\n> " if self.prompt else "\n"
            if was_prompt and not self.prompt:
                self.closing = True
                return
        self.closing = not self.prompt

    def run(self, args: list[str]) -> str | Iterator[str]:
        """One command's output (without the terminating empty line)."""
        proc = self.processor
        if len(args) > MAX_ARGS:
            args = args[:MAX_ARGS]
        if not args:
            return "Unknown command. Please enter one of the following commands only:\n" + "".join(
                proc.help_lines(self.level)
            )
        word = args[0]
        if word == "prompt":
            self.prompt = not self.prompt
            return ""
        if word == "help":
            return "The following commands are valid at this level:\n" + "".join(proc.help_lines(self.level))
        cmd = proc.find(args)
        if cmd is None:
            return "Unknown command, but maybe one of the following ones is a better match:\n" + "".join(
                proc.suggestions(args, self.level)
            )
        if LEVELS[self.level] < LEVELS[cmd.level]:
            return PERMISSION_DENIED
        try:
            return cmd.handler(self, args)
        except Reply as reply:
            return reply.message
