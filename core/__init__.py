"""raptor: train, check, export and fly foundation policies for quadrotor control."""

__version__ = "0.1.0"
