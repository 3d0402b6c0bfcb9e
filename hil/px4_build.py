"""Building PX4 v1.15 SITL with the exported raptor module: the tree (a folder or the release tarball, unpacked
once into the cache), the Python environment its build scripts need, and PX4's own build with
EXTERNAL_MODULES_LOCATION. Used by `raptor hil --sitl px4` (raptor.hil.px4_sitl)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from raptor import fileio
from raptor.errors import ConfigError, RaptorError
from raptor.policy_export.export import export


def cache_dir() -> Path:
    return fileio.cache_dir("px4")


# ----------------------------------------------------------------------------------------------------------------
# The tree, its Python environment, the build


def px4_source(given: str | None) -> Path:
    """--px4-tree, RAPTOR_PX4_TREE, or the project's shared tarball beside the checkout."""
    cand = given or os.environ.get("RAPTOR_PX4_TREE")
    if cand:
        p = Path(cand).expanduser()
        if not p.exists():
            raise ConfigError(f"PX4 tree '{p}' does not exist: pass --px4-tree with a PX4-Autopilot v1.15 folder or "
                              "the px4-v1.15.2-sitl.tar.xz tarball")
        return p
    here = Path(__file__).resolve()
    for root in (Path.cwd(), *Path.cwd().parents[:2], *here.parents[:4]):
        t = root / "shared" / "firmware" / "px4-v1.15.2-sitl.tar.xz"
        if t.is_file():
            return t
    raise ConfigError("no PX4 tree: pass --px4-tree PATH (a PX4-Autopilot v1.15 folder, or px4-v1.15.2-sitl.tar.xz) "
                      "or set RAPTOR_PX4_TREE")


def px4_tree(source: Path, log=print) -> Path:
    """The PX4-Autopilot folder: `source` itself, or the tarball unpacked once into the cache."""
    if source.is_dir():
        if not (source / "Makefile").is_file() or not (source / "src" / "modules").is_dir():
            raise ConfigError(f"'{source}' is not a PX4-Autopilot tree (no Makefile and src/modules)")
        return source
    root = cache_dir() / f"tree-{source.name.split('.tar')[0]}-{source.stat().st_size}"
    tree = root / "PX4-Autopilot"
    if not (root / ".unpacked").is_file():
        log(f"unpacking {source} into {root} (once)")
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        with tarfile.open(source) as tf:
            tf.extractall(root, filter="tar")  # the tree's git repositories need their links and modes
        if not tree.is_dir():
            raise ConfigError(f"'{source}' holds no PX4-Autopilot folder")
        (root / ".unpacked").write_text("ok")
    return tree


BUILD_MODULES = ("em", "jinja2", "genmsg", "kconfiglib", "yaml", "jsonschema", "future", "packaging")


def python_env(tree: Path, log=print) -> Path:
    """A Python with what PX4's build scripts import: this one if it has them (empy 3.3.4, jinja2, ...), else a
    virtual environment in the cache from the tree's Tools/setup/requirements.txt (created once; needs pip access)."""
    probe = "import " + ", ".join(BUILD_MODULES) + "; assert em.__version__.startswith('3.')"
    if subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0:
        return Path(sys.executable).parent
    venv = cache_dir() / "venv"
    py = venv / "bin" / "python"
    if py.is_file() and subprocess.run([str(py), "-c", probe], capture_output=True).returncode == 0:
        return py.parent
    req = (tree / "Tools" / "setup" / "requirements.txt").read_text()
    req = req.replace("matplotlib>=3.0.*", "matplotlib>=3.0")  # a specifier current pip rejects
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / "requirements.txt").write_text(req)
    log(f"creating PX4's Python environment in {venv} (once, about 2 minutes)")
    r = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if r.returncode == 0:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(cache_dir() / "requirements.txt")],
                           capture_output=True, text=True)
    if r.returncode != 0:
        raise ConfigError(f"could not create PX4's Python environment ({r.stderr.strip()[-400:]}); install "
                          f"{tree}/Tools/setup/requirements.txt into this Python and rerun")
    return py.parent


def build_sitl(policy_name: str, tree: Path, log=print, policy=None) -> Path:
    """Export the px4 target for the policy and build PX4 SITL with it; the build folder. policy: the same policy
    already loaded (raptor.policy.load(policy_name))."""
    if shutil.which("make") is None or shutil.which("cmake") is None:
        raise ConfigError("building PX4 needs make, cmake, ninja and a C++ compiler (apt install build-essential "
                          "cmake ninja-build)")
    bindir = python_env(tree, log)
    ext = cache_dir() / "export"
    if ext.exists():
        shutil.rmtree(ext)
    export(policy_name, "px4", ext, policy=policy)
    board = "px4_sitl_raptor" if (tree / "boards" / "px4" / "sitl" / "raptor.px4board").is_file() else \
        "px4_sitl_default"
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", "GIT_SUBMODULES_ARE_EVIL": "1"}
    jobs = str(max(1, min(os.cpu_count() or 2, 8)))
    # PX4 v1.15 regenerates parameters.xml only when a params file under its own src/ changes, not an external
    # module's: drop it so that the module's parameters (RPT_*) are always current
    (tree / "build" / board / "parameters.xml").unlink(missing_ok=True)
    log(f"building PX4 {board} with the exported module (a clean build takes 2-4 minutes on 2 cores)")
    t0 = time.perf_counter()
    r = subprocess.run(["make", f"-j{jobs}", board, f"EXTERNAL_MODULES_LOCATION={ext}"], cwd=tree, env=env,
                       capture_output=True, text=True)
    log_file = cache_dir() / "build.log"
    log_file.write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-25:])
        raise RaptorError(f"the PX4 build failed (log: {log_file}):\n{tail}")
    warnings = [line for line in (r.stdout + r.stderr).splitlines()
                if "raptor_policy" in line and "warning:" in line]
    if warnings:
        raise RaptorError("the module built with warnings:\n" + "\n".join(warnings[:10]))
    build = tree / "build" / board
    if not (build / "bin" / "px4-raptor_policy").exists():
        raise RaptorError(f"the build has no raptor_policy command ({build}/bin): was the module included?")
    log(f"built in {time.perf_counter() - t0:.0f} s: {build}")
    return build


