"""Builds minilb's optional compiled speed-ups (Cython, `minilb/_speedups/*.pyx`).

Everything else is declared in pyproject.toml.  Each ``minilb/_speedups/NAME.pyx``
becomes the extension module ``minilb_speedups.NAME``: a top-level namespace of its
own, so that the compiled modules installed in site-packages are found even when the
``minilb`` package itself is imported from a source checkout (``python -m pytest``
in the repository puts the checkout first on ``sys.path``).

The speed-ups are optional: where Cython or a C compiler is missing, or a module
fails to compile, the build says so and goes on, and minilb runs its pure-Python
code, which is always there and gives the same results (tests/test_speedups_*.py
compare them).  ``MINILB_PURE=1`` in the environment makes minilb ignore built
speed-ups at run time.
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
SOURCES = sorted((HERE / "minilb" / "_speedups").glob("*.pyx"))


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: the pure-Python code stands in."""

    def run(self) -> None:
        if self.inplace:  # `build_ext --inplace` copies into minilb_speedups/, which a checkout lacks
            (HERE / "minilb_speedups").mkdir(exist_ok=True)
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler at all: pure Python it is
            self._skip("all speed-ups", exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - one failed module: pure Python for it
            self._skip(ext.name, exc)

    @staticmethod
    def _skip(what: str, exc: Exception) -> None:
        print(f"minilb: not building {what} ({exc}); the pure-Python code will be used", file=sys.stderr)


def extensions() -> list[Extension]:
    if not SOURCES:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("minilb: Cython is missing; the pure-Python code will be used", file=sys.stderr)
        return []
    built = []
    for src in SOURCES:
        module = Extension(
            f"minilb_speedups.{src.stem}", [str(src.relative_to(HERE))], extra_compile_args=["-O2"]
        )
        try:
            built += cythonize([module], language_level=3, quiet=True)
        except Exception as exc:  # noqa: BLE001 - a module Cython refuses: pure Python for it
            OptionalBuildExt._skip(module.name, exc)
    return built


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
