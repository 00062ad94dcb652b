"""py-spy's collapsed stacks reduced to the functions that use the most time."""

from __future__ import annotations

from tests.support.bench import profile

COLLAPSED = """process 10:"python -m minilb";run (twisted/internet/base.py);doRead (twisted/internet/tcp.py);dataReceived (minilb/http/frontend.py) 6
process 10:"python -m minilb";run (twisted/internet/base.py);doRead (twisted/internet/tcp.py);dataReceived (minilb/http/frontend.py);feed (minilb/http/parse.py) 3
process 10:"python -m minilb";run (twisted/internet/base.py);doWrite (twisted/internet/abstract.py) 1
not a stack line
"""


def test_self_and_inclusive_counts():
    summary = profile.summarize_collapsed(COLLAPSED)
    assert summary.total_samples == 10
    assert summary.self_samples[0] == ("dataReceived (minilb/http/frontend.py)", 6)
    assert dict(summary.self_samples)["feed (minilb/http/parse.py)"] == 3
    inclusive = dict(summary.inclusive_samples)
    assert inclusive["run (twisted/internet/base.py)"] == 10
    assert inclusive["dataReceived (minilb/http/frontend.py)"] == 9
    assert not any(frame.startswith("process ") for frame in inclusive)


def test_rendered_profile_gives_shares():
    text = profile.render_profile(profile.summarize_collapsed(COLLAPSED), command="x", duration_s=10)
    assert "| 60.0% | 6 | `dataReceived (minilb/http/frontend.py)` |" in text
    assert "| 90.0% | 9 | `dataReceived (minilb/http/frontend.py)` |" in text  # inclusive
    assert "`run (twisted/internet/base.py)` |" not in text  # on every stack: left out


def test_empty_profile_says_so():
    text = profile.render_profile(profile.summarize_collapsed(""), command="x", duration_s=10)
    assert "no samples" in text
