"""Generate README.md's table of configuration keywords from minilb's keyword registry.

python scripts/keyword_table.py            # print the table
python scripts/keyword_table.py --write    # rewrite README.md between the markers
python scripts/keyword_table.py --check    # exit 1 if README.md's table is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from minilb.config import keywords  # noqa: E402
from minilb.config.keywords import PROXY_KINDS, REGISTRY  # noqa: E402
from minilb.config.options import option_support  # noqa: E402

START = "<!-- keywords:start -->"
END = "<!-- keywords:end -->"
_SHORT = {"defaults": "defaults", "frontend": "frontend", "listen": "listen", "backend": "backend"}
_STATUS = {
    keywords.SUPPORTED: "supported",
    keywords.IGNORED: "accepted, no effect",
    keywords.UNSUPPORTED: "warning: not supported",
    keywords.REMOVED: "error (removed from HAProxy)",
}


def _sections(kw: keywords.Keyword) -> str:
    if kw.sections <= set(PROXY_KINDS):
        names = [k for k in PROXY_KINDS if k in kw.sections]
        if kw.named_defaults_only and "defaults" in names:
            names[names.index("defaults")] = "defaults (named)"
        return ", ".join(names)
    return ", ".join(sorted(kw.sections))


def _collapsed(kind: str, name: str, kw: keywords.Keyword) -> bool:
    """Rows folded into one summary row to keep the table short."""
    if kind == "global" and name.startswith("tune.") and kw.status == keywords.IGNORED:
        return True
    return kw.status == keywords.REMOVED and name[:3] in ("req", "rsp")


def rows() -> list[tuple[str, str, str, str]]:
    out = []
    for kind in ("global", "peers"):
        for name in sorted(REGISTRY[kind]):
            kw = REGISTRY[kind][name]
            if _collapsed(kind, name, kw):
                continue
            out.append(
                (
                    name,
                    kind,
                    _STATUS[kw.status],
                    kw.note.replace("|", "\\|") if kw.status != keywords.REMOVED else "",
                )
            )
    out.append(("tune.* (all others)", "global", _STATUS[keywords.IGNORED], "performance knobs"))
    for name in sorted(REGISTRY["frontend"]):
        kw = REGISTRY["frontend"][name]
        if _collapsed("frontend", name, kw):
            continue
        out.append(
            (
                name,
                _sections(kw),
                _STATUS[kw.status],
                kw.note.replace("|", "\\|") if kw.status != keywords.REMOVED else "",
            )
        )
    out.append(("reqadd, reqrep, rspadd... (req*/rsp*)", "proxies", _STATUS[keywords.REMOVED], ""))
    return out


def table() -> str:
    lines = [
        "Generated from the keyword registry (`minilb/config/keywords.py`) by `python scripts/keyword_table.py --write`.",
        "Sections minilb parses and ignores with one warning: "
        + ", ".join(f"`{s}`" for s in keywords.UNIMPLEMENTED_SECTIONS)
        + ". Any other word is an error with a did-you-mean.",
        "",
        "| keyword | section(s) | status | note |",
        "| --- | --- | --- | --- |",
    ]
    for name, sections, status, note in rows():
        lines.append(f"| `{name}` | {sections} | {status} | {note} |")
    for kind in ("bind", "server"):
        supported, warned = option_support(kind)
        lines.append("")
        lines.append(f"`{kind}` options supported: " + ", ".join(f"`{n}`" for n in supported) + ".")
        lines.append(
            f"`{kind}` options warned about and ignored: " + ", ".join(f"`{n}`" for n in warned) + "."
        )
    return "\n".join(lines)


def render_readme(text: str) -> str:
    start = text.index(START) + len(START)
    end = text.index(END)
    return text[:start] + "\n" + table() + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite README.md between the markers")
    group.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    parser.add_argument("--readme", default=str(REPO / "README.md"))
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        print(table())
        return 0
    path = Path(args.readme)
    text = path.read_text()
    if START not in text or END not in text:
        print(f"{path}: markers {START} / {END} not found", file=sys.stderr)
        return 2
    wanted = render_readme(text)
    if args.check:
        if wanted != text:
            print(
                f"{path}: keyword table is stale; run python scripts/keyword_table.py --write",
                file=sys.stderr,
            )
            return 1
        return 0
    path.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
