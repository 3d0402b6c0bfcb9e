"""raptor: train, check, export and fly foundation policies for quadrotor control."""

__version__ = "0.1.0"


def _register_envs() -> None:
    import gymnasium

    if "raptor/Quadrotor-v0" not in gymnasium.registry:
        gymnasium.register(id="raptor/Quadrotor-v0", entry_point="raptor.sim.gym_env:QuadrotorEnv")


_register_envs()
