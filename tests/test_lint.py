"""The Python code passes the project's ruff rules (pyproject.toml [tool.ruff.lint])."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed (it is in the test extras)")
def test_ruff_clean():
    r = subprocess.run(["ruff", "check", "--output-format", "concise", str(REPO)], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
