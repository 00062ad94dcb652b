"""Running a test on the pure-Python code and on a compiled speed-up (`minilb.speedups`)."""

from __future__ import annotations

import pytest

from minilb.speedups import LEARN_API, STICK_API, TEACH_API, load

#: the implementations a speed-up's tests run on (``params=IMPLS`` of a fixture)
IMPLS = ("pure", "compiled")
#: the API each compiled module is loaded with
API = {"learn": LEARN_API, "stick": STICK_API, "teach": TEACH_API}


def not_built(name: str) -> str:
    """Why a test of the compiled ``name`` is skipped."""
    return f"minilb_speedups.{name} is not built (pip install . builds it) or MINILB_PURE is set"


def compiled(name: str):
    """The compiled module ``name`` as minilb loads it, or None."""
    return load(name, API[name])


def needs(name: str) -> pytest.MarkDecorator:
    """Skips a test (or, as ``pytestmark``, a module) where ``name`` is not compiled."""
    return pytest.mark.skipif(compiled(name) is None, reason=not_built(name))


def compiled_or_skip(name: str):
    """The compiled module ``name``; the test is skipped where it is not built."""
    module = compiled(name)
    if module is None:
        pytest.skip(not_built(name))
    return module


def choose(impl: str, name: str, api: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``load(name, api)`` give None (``impl`` "pure": MINILB_PURE set) or the
    built module ("compiled"; the test is skipped when it is not built)."""
    if impl == "pure":
        monkeypatch.setenv("MINILB_PURE", "1")
        return
    monkeypatch.delenv("MINILB_PURE", raising=False)
    if load(name, api) is None:
        pytest.skip(not_built(name))
