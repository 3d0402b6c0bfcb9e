"""Vectorized quadrotor simulator with the reference (l2f / RAPTOR) physics and conventions.

- `raptor.sim.airframe`: airframes as data (named, sampled, files) and the batched tensor view
- `raptor.sim.sampling`: RAPTOR's domain randomization, bit-exact with the reference sampler
- `raptor.sim.dynamics`: pure RK4 dynamics, `step(params, state, action) -> next_state`
- `raptor.sim.mdp`: initial states, observations, reward, termination, Langevin targets
- `raptor.sim.env`: the batched torch environment; `raptor.sim.gym_env`: gymnasium adapters
"""

from raptor.sim.airframe import Airframe, named_airframe, named_airframe_names
from raptor.sim.airframe_batch import AirframeBatch
from raptor.sim.airframe_files import load_airframes, resolve_airframes, save_airframes
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv
from raptor.sim.sampling import sample_airframes

__all__ = ["Airframe", "AirframeBatch", "BatchedQuadrotorEnv", "EnvConfig", "load_airframes", "named_airframe",
           "named_airframe_names", "resolve_airframes", "sample_airframes", "save_airframes"]
