"""The profile of minilb's hot path: the py-spy command line, and the reduction of py-spy's collapsed
stacks (`frame;frame;frame COUNT` per line) to the functions that use the most time, by self time and
by inclusive time.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import attrs


@attrs.frozen
class ProfileSummary:
    total_samples: int
    self_samples: tuple[tuple[str, int], ...]  # (frame, samples) by decreasing self time
    inclusive_samples: tuple[tuple[str, int], ...]  # (frame, samples) by decreasing inclusive time


def py_spy_command(pid: int, output: Path, duration_s: float, rate: int = 250) -> list[str] | None:
    """py-spy recording pid and its children as collapsed stacks, or None when py-spy is not installed."""
    binary = shutil.which("py-spy")
    if binary is None:
        return None
    return [
        binary,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--nolineno",
        "--nonblocking",
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--duration",
        str(max(1, round(duration_s))),
        "--output",
        str(output),
    ]


def summarize_collapsed(text: str, top: int = 25) -> ProfileSummary:
    """Count self and inclusive samples per frame; process and thread pseudo-frames are dropped."""
    self_counts: Counter[str] = Counter()
    inclusive_counts: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if not _is_pseudo_frame(frame)]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive_counts[frame] += count
    return ProfileSummary(
        total_samples=total,
        self_samples=tuple(self_counts.most_common(top)),
        inclusive_samples=tuple(inclusive_counts.most_common(top)),
    )


def _is_pseudo_frame(frame: str) -> bool:
    return frame.startswith(("process ", "thread "))


def render_profile(
    summary: ProfileSummary,
    *,
    command: str,
    duration_s: float,
    system: str = "minilb",
    scenario: str = "plain proxy, keep-alive",
) -> str:
    """The markdown of a profile: two tables of the top frames with their share of all samples."""
    if summary.total_samples == 0:
        return "py-spy recorded no samples (is the process a Python process, and was py-spy allowed to attach?)\n"
    lines = [
        f"py-spy sampled {system}'s process tree for {duration_s:.0f} s of the scenario '{scenario}' "
        f"({summary.total_samples} busy samples; idle time in the event loop's poll is not sampled).",
        "",
        f"Command: `{command}`",
        "",
        "Top functions by self time (the frame on top of the stack):",
        "",
        "| share | samples | function |",
        "| ---: | ---: | --- |",
    ]
    for frame, count in summary.self_samples:
        lines.append(f"| {100 * count / summary.total_samples:.1f}% | {count} | `{frame}` |")
    lines += [
        "",
        "Top functions by inclusive time (anywhere on the stack; the frames on at least 98% of the stacks,",
        "the entry point and the reactor loop, are left out):",
        "",
        "| share | samples | function |",
        "| ---: | ---: | --- |",
    ]
    for frame, count in summary.inclusive_samples:
        if count >= 0.98 * summary.total_samples:
            continue
        lines.append(f"| {100 * count / summary.total_samples:.1f}% | {count} | `{frame}` |")
    return "\n".join(lines) + "\n"
