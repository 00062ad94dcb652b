"""Running a test on the pure-Python code and on a compiled speed-up (`minilb.speedups`)."""

from __future__ import annotations

import pytest

from minilb.speedups import load

#: the implementations a speed-up's tests run on (``params=IMPLS`` of a fixture)
IMPLS = ("pure", "compiled")


def choose(impl: str, name: str, api: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``load(name, api)`` give None (``impl`` "pure": MINILB_PURE set) or the
    built module ("compiled"; the test is skipped when it is not built)."""
    if impl == "pure":
        monkeypatch.setenv("MINILB_PURE", "1")
        return
    monkeypatch.delenv("MINILB_PURE", raising=False)
    if load(name, api) is None:
        pytest.skip(f"minilb_speedups.{name} is not built (pip install . builds it) or MINILB_PURE is set")
