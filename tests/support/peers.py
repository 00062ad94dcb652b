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
