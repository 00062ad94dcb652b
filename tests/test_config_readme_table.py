"""README.md's keyword table is generated from the registry and must not drift."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_readme_keyword_table_is_current():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "keyword_table.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr + "\nrun: python scripts/keyword_table.py --write"


def test_check_detects_a_stale_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- keywords:start -->\n| old |\n<!-- keywords:end -->\n")
    script = str(REPO / "scripts" / "keyword_table.py")
    stale = subprocess.run([sys.executable, script, "--check", "--readme", str(readme)], capture_output=True)
    assert stale.returncode == 1
    subprocess.run([sys.executable, script, "--write", "--readme", str(readme)], check=True)
    text = readme.read_text()
    assert "| `stick-table` | frontend, listen, backend | supported |" in text
    assert "| `bind` | peers | supported |" in text
    fresh = subprocess.run([sys.executable, script, "--check", "--readme", str(readme)], capture_output=True)
    assert fresh.returncode == 0
