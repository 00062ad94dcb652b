"""The README's two set-up commands stay true: the example config exists, and CI runs
exactly the README's test command."""

import re

from tests.conftest import REPO


def setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Set up on a fresh machine\n\n```sh\n(.*?)```", text, re.S)
    assert block, "README must open with a set-up block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands():
    assert len(setup_commands()) == 2


def test_run_command_uses_an_example_config_that_exists():
    run = setup_commands()[0]
    configs = re.findall(r"conf/\S+\.cfg", run)
    assert configs and all((REPO / c).is_file() for c in configs)
    assert "twistd -n minilb" in run


def test_ci_runs_the_readme_test_command_verbatim():
    test = setup_commands()[1]
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test in ci_lines
    assert "python -m pytest" in test
