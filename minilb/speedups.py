"""The optional compiled speed-ups (Cython modules ``minilb_speedups.NAME`` built by
setup.py from ``minilb/_speedups/NAME.pyx``).

Each speed-up stands in for a pure-Python hot loop and must give exactly what that
loop gives; the pure-Python code is always there, used where a module was not built,
where it was built from another version of its source, or when ``MINILB_PURE`` is set
in the environment (tests and benchmarks compare both).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

#: the interface each compiled module must speak (its ``API`` constant): raised with
#: the module's whenever a call, an argument or a shared layout changes
#: (the stick and teach modules went to 2 when a key's dict began to be chosen by bits
#: 16-19 of the key: `minilb.stick.table.SHARD_SHIFT`)
LEARN_API = 1
STICK_API = 2
TEACH_API = 2


def load(name: str, api: int) -> ModuleType | None:
    """The compiled module ``minilb_speedups.NAME`` if it is built and speaks ``api``
    (its ``API`` constant, raised whenever its interface changes), else None."""
    if os.environ.get("MINILB_PURE"):
        return None
    try:
        module = importlib.import_module(f"minilb_speedups.{name}")
    except ImportError:
        return None
    return module if getattr(module, "API", None) == api else None
