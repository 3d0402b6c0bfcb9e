"""Vectorized quadrotor simulator with the reference (l2f / RAPTOR) physics and conventions."""
