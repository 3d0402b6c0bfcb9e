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


PACKAGE_DIRS = ("core", "sim", "rl", "distill", "policy_export", "hil", "firmware")


def test_modules_stay_readable_and_layers_point_one_way():
    """No module of the package over 500 lines (one module per concern, issue #29), and nothing but the CLI imports
    the training CLI module."""
    long, cli_users = [], []
    for d in PACKAGE_DIRS:
        for f in (REPO / d).rglob("*.py"):
            text = f.read_text()
            if text.count("\n") > 500:
                long.append(f"{f.relative_to(REPO)}: {text.count(chr(10))} lines")
            if "train_cli" in text and f.relative_to(REPO).as_posix() not in ("core/cli.py", "rl/train_cli.py"):
                cli_users.append(str(f.relative_to(REPO)))
    assert not long, long
    assert not cli_users, f"only the CLI may import raptor.rl.train_cli: {cli_users}"
