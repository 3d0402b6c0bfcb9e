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


PACKAGE_DIRS = ("core", "sim", "rl", "distill", "policy_export", "hil", "firmware", "commands")

# The layer table of docs/architecture.md: each folder (its package) and the packages it may import. The floor
# (`raptor`: conventions, errors, fileio, geometry, validate, options, policy, metrics, runtime) imports only
# itself; each stage imports the floor and the stages before it; the roof (raptor.commands) may import anything
# and nothing imports it.
LAYERS = {
    "core": ("raptor",),
    "sim": ("raptor", "raptor.sim"),
    "policy_export": ("raptor", "raptor.sim", "raptor.policy_export"),
    "rl": ("raptor", "raptor.sim", "raptor.rl"),
    "distill": ("raptor", "raptor.sim", "raptor.rl", "raptor.distill"),
    "hil": ("raptor", "raptor.sim", "raptor.policy_export", "raptor.hil"),
    "commands": ("raptor", "raptor.sim", "raptor.rl", "raptor.distill", "raptor.policy_export", "raptor.hil",
                 "raptor.commands"),
}
STAGES = ("raptor.sim", "raptor.rl", "raptor.distill", "raptor.policy_export", "raptor.hil", "raptor.commands",
          "raptor.firmware")


def package_of(module: str) -> str:
    """raptor.sim.env -> raptor.sim; raptor.metrics (the floor) -> raptor."""
    return next((p for p in STAGES if module == p or module.startswith(p + ".")), "raptor")


def is_module(name: str) -> bool:
    """A module or package of this repository: raptor.sim.mdp -> sim/mdp.py, raptor.metrics -> core/metrics.py."""
    parts = name.split(".")
    if parts[0] != "raptor":
        return False
    folder = "core" if len(parts) == 1 or not (REPO / parts[1]).is_dir() or parts[1] == "policy" else parts[1]
    rest = parts[1:] if folder == "core" else parts[2:]
    base = REPO.joinpath(folder, *rest)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def raptor_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported raptor module, at module level) for every import of a raptor module in a file."""
    import ast

    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from raptor.sim import mdp` imports the module raptor.sim.mdp; `from raptor.sim import EnvConfig` the
            # package raptor.sim
            names = [f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}") else node.module
                     for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        out += [(node.lineno, n, id(node) in top) for n in names if n == "raptor" or n.startswith("raptor.")]
    return out


def test_modules_stay_readable():
    """No module of the package over 500 lines (one module per concern, issue #29)."""
    long = []
    for d in PACKAGE_DIRS:
        for f in (REPO / d).rglob("*.py"):
            n = f.read_text().count("\n")
            if n > 500:
                long.append(f"{f.relative_to(REPO)}: {n} lines")
    assert not long, long


def test_layers_point_one_way():
    """Every import of the package follows the layer table of docs/architecture.md (issue #40): the floor imports no
    stage, no stage imports one after it, nothing imports the roof (raptor.commands)."""
    bad = []
    for d, allowed in LAYERS.items():
        for f in sorted((REPO / d).rglob("*.py")):
            if f.relative_to(REPO).as_posix() == "core/__main__.py":  # `python -m raptor`: the entry point
                continue
            for line, mod, _ in raptor_imports(f):
                if package_of(mod) not in allowed:
                    bad.append(f"{f.relative_to(REPO)}:{line} imports {mod}")
    assert not bad, "imports against docs/architecture.md's layers:\n" + "\n".join(bad)
    text = (REPO / "docs" / "architecture.md").read_text()
    for d in LAYERS:  # the table the test holds is the one the document draws
        assert f"`{d}/`" in text, f"docs/architecture.md does not draw the folder {d}/"


def module_name(path: Path) -> str:
    """core/metrics.py -> raptor.metrics, sim/env.py -> raptor.sim.env, sim/__init__.py -> raptor.sim."""
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    parts[0] = "raptor" if parts[0] == "core" else f"raptor.{parts[0]}"
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_no_import_cycle():
    """No cycle among the package's modules, function-level imports included (issue #40): a module imported from
    below never imports its importer back."""
    modules = {module_name(f): f for d in PACKAGE_DIRS for f in (REPO / d).rglob("*.py")}
    graph = {m: set() for m in modules}
    for m, f in modules.items():
        for _, mod, _ in raptor_imports(f):
            target = mod if mod in modules else mod.rsplit(".", 1)[0]  # `from raptor.sim import env` -> raptor.sim
            if target in modules and target != m and not (m.startswith(target + ".") or target == "raptor"):
                graph[m].add(target)
    cycles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
