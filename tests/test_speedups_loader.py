"""`minilb.speedups.load`: a compiled module is used only when it is there, speaks
the expected API and MINILB_PURE is not set."""

import sys
import types

import pytest

from minilb.speedups import load


@pytest.fixture
def fake_module(monkeypatch):
    module = types.ModuleType("minilb_speedups.fake")
    module.API = 3
    monkeypatch.setitem(sys.modules, "minilb_speedups.fake", module)
    monkeypatch.delenv("MINILB_PURE", raising=False)
    return module


def test_a_built_module_of_the_expected_api_is_used(fake_module):
    assert load("fake", 3) is fake_module


def test_a_module_built_from_another_version_is_not_used(fake_module):
    assert load("fake", 4) is None
    del fake_module.API
    assert load("fake", 3) is None


def test_minilb_pure_turns_the_speedups_off(fake_module, monkeypatch):
    monkeypatch.setenv("MINILB_PURE", "1")
    assert load("fake", 3) is None


def test_a_module_that_was_not_built_is_none():
    assert load("no_such_speedup", 1) is None


@pytest.mark.parametrize("name", ["stick", "teach"])
def test_compiled_modules_choose_a_keys_dict_as_the_table_does(name, monkeypatch):
    """The compiled track and teach look keys up in the table's dicts themselves (a
    wrong dict would miss every key: the track path would fall back to Python on every
    request, the teach would skip entries never numbered)."""
    from minilb.stick.table import SHARD_SHIFT
    from tests.support.speedups import compiled_or_skip

    monkeypatch.delenv("MINILB_PURE", raising=False)
    module = compiled_or_skip(name)
    assert module.SHARD_SHIFT == SHARD_SHIFT
