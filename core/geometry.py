"""Rotations, the floor every layer may use: unit quaternions wxyz (body -> world, FLU), their rotation matrices and
products, and headings. Frames and conventions: raptor.conventions."""

from __future__ import annotations

import torch


def rotation_matrix(q: torch.Tensor) -> torch.Tensor:
    """Row-major rotation matrix (B, 9) of unit quaternions q (B, 4) wxyz, body -> world (spec 4.3)."""
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1)


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a (x) b of wxyz quaternions (B, 4)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def yaw(q: torch.Tensor) -> torch.Tensor:
    """(B,) rad in (-pi, pi]: the heading of the body x axis about world z, of quaternions q (B, 4) wxyz."""
    w, x, y, z = q.unbind(-1)
    return torch.atan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z))
