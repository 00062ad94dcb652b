"""Fixtures shared by every test area.  Area-specific helpers live in tests/support/."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# Hypothesis: derandomised in CI (.ci/run sets HYPOTHESIS_PROFILE=ci), no deadlines on a shared 2-core box.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def haproxy_binary() -> str | None:
    return os.environ.get("MINILB_HAPROXY") or shutil.which("haproxy")


requires_haproxy = pytest.mark.skipif(
    haproxy_binary() is None, reason="needs a real haproxy 2.6 binary (apt-get install -y haproxy)"
)


@pytest.fixture(params=["pure", "compiled"], scope="module")
def stick_impl(request):
    """Runs a module's tests on both implementations of the stick tables' hot paths:
    the generated Python ones and the compiled ones (minilb/_speedups/stick.pyx); the
    tables a test builds use the one chosen."""
    from minilb.stick import table
    from tests.support.speedups import compiled_or_skip

    module = None
    if request.param == "compiled":
        module = compiled_or_skip("stick")
    saved = table._speedups
    table._speedups = module
    yield request.param
    table._speedups = saved
