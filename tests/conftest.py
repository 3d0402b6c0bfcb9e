"""Shared test helpers: where the golden fixtures are, and how to load their airframes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from raptor.sim.airframe import Airframe
from raptor.sim.airframe_batch import AirframeBatch

REPO = Path(__file__).resolve().parents[1]
MENAGERIE = REPO / "tests" / "data" / "mujoco_menagerie"  # Menagerie's Crazyflie 2 and Skydio X2 (PROVENANCE.md)


def fixture_dir() -> Path:
    """The golden fixtures made with the reference simulator (tests/data/golden, see its README); RAPTOR_FIXTURES
    points at another set in the same format (e.g. a held-out one)."""
    return Path(os.environ.get("RAPTOR_FIXTURES", REPO / "tests" / "data" / "golden" / "public"))


@pytest.fixture(scope="session")
def fixtures() -> Path:
    d = fixture_dir()
    if not (d / "openloop.npz").is_file():
        pytest.fail(f"golden fixtures not found in {d}: RAPTOR_FIXTURES must name a folder with openloop.npz "
                    "(unset it to use the repository's tests/data/golden/public)")
    return d


def load_npz(path: Path) -> dict:
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def batch_for(data: dict, index: np.ndarray, dtype=torch.float64) -> AirframeBatch:
    """AirframeBatch with one row per entry of `index` (airframe indices into data['params_json'])."""
    airframes = [Airframe(str(n), json.loads(p)) for n, p in zip(data["airframe_names"], data["params_json"])]
    return AirframeBatch.from_airframes(airframes, dtype=dtype).index(torch.as_tensor(index))


def rel_err(a, b) -> np.ndarray:
    """The fixtures' relative error |a - b| / (|b| + 0.01)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs(a - b) / (np.abs(b) + 0.01)
