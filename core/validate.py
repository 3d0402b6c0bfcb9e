"""Checks of user-given values at the boundary (CLI flags, API arguments), each with a message that says the fix."""

from __future__ import annotations

import os

from raptor.errors import ConfigError

SEED_MAX = 2**32 - 1  # the sampler seeds std::mt19937: larger seeds would silently repeat smaller ones


def check_seed(seed, what: str = "--seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"{what} {seed!r} is out of range: seeds are whole numbers from 0 to {SEED_MAX} "
                          "(a larger one would repeat a smaller one)")
    return seed


def check_device(device: str, what: str = "--device") -> str:
    """'cpu', 'cuda' or 'cuda:N', and CUDA only where torch sees a device."""
    import torch

    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise ConfigError(f"{what} '{device}' is not a device here; use cpu, cuda or cuda:N")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{what} {device}: torch sees no CUDA device (CPU build of torch, or no GPU); use cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(f"{what} {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def memory_bytes(device: str) -> int | None:
    """Physical memory of the device (None where it cannot be read)."""
    try:
        if str(device).startswith("cuda"):
            import torch

            return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError, RuntimeError):
        return None


def check_fits(needed_bytes: float, device: str, what: str, fix: str) -> None:
    """Refuse up front what cannot fit in memory, before any folder is made or a long run starts."""
    have = memory_bytes(device)
    if have is not None and needed_bytes > have:
        raise ConfigError(f"{what} needs about {needed_bytes / 2**30:,.1f} GiB, more than the "
                          f"{have / 2**30:,.1f} GiB of {device} here; {fix}")
