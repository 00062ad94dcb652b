"""Owns the one list of feature modules that register rule keywords, and loading them.

Features add their own fetches, converters, actions and rule keywords when imported
(DESIGN.md, example 5: ``minilb.stick.fetches`` adds ``sc0_http_req_rate`` and
``track-sc0``); the generic rules code names them here, by module name, so that it
imports none of them directly.  `load_features` runs before every compile, and check
mode compiles through the same `minilb.rules.compile.check_rules`, so ``minilb -c``
and a running worker always know the same keywords.  A listed module that fails to
import is an error, never a silently smaller keyword set.
"""

from __future__ import annotations

import importlib

#: every module outside minilb.rules whose import registers rule keywords
FEATURE_MODULES = (
    "minilb.stick.fetches",  # sc*_/src_/table_* fetches and converters, track-sc*, sc-inc-gpc*...
    "minilb.stick.persistence",  # stick on / match / store-request / store-response
)

_loaded = False


def load_features() -> None:
    """Import every `FEATURE_MODULES` entry (once)."""
    global _loaded
    if _loaded:
        return
    for name in FEATURE_MODULES:
        importlib.import_module(name)
    _loaded = True
