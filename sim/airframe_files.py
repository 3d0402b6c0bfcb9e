"""Airframe files and specs: the versioned airframe file (atomic writes, checked reads) and `resolve_airframes`, which
turns what a user types (`named`, `crazyflie,x500`, `sampled:N:SEED[:race]`, a file, `SPEC+SPEC`) into airframes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from raptor.errors import AirframeError
from raptor.fileio import atomic_write_text
from raptor.sim.airframe import NAMED_SET, Airframe, named_airframe
from raptor.sim.sampling import RACE_FAST_RANGES, RACE_RANGES, RandomizationRanges, sample_airframes

AIRFRAME_FILE_FORMAT = "raptor-airframes"
AIRFRAME_FILE_VERSION = 1


def save_airframes(path: str | os.PathLike, airframes: Sequence[Airframe], meta: dict | None = None) -> None:
    """Write a versioned airframe file atomically (temporary file, then rename)."""
    doc = {"format": AIRFRAME_FILE_FORMAT, "version": AIRFRAME_FILE_VERSION, "meta": meta or {},
           "airframes": [a.to_json() for a in airframes]}
    atomic_write_text(path, json.dumps(doc, indent=1))


def load_airframes(path: str | os.PathLike) -> list[Airframe]:
    """Load and validate an airframe file written by `raptor sample` (or a list of {name, parameters})."""
    path = Path(path)
    if not path.is_file():
        raise AirframeError(f"airframe file '{path}' does not exist")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AirframeError(f"airframe file '{path}' is not valid JSON: {e}") from None
    except RecursionError:
        raise AirframeError(f"airframe file '{path}' nests too deeply to be an airframe file") from None
    except OSError as e:
        raise AirframeError(f"airframe file '{path}' cannot be read: {e.strerror or e}") from None
    if isinstance(doc, dict):
        if doc.get("format") != AIRFRAME_FILE_FORMAT:
            raise AirframeError(f"'{path}' is not a raptor airframe file (format is {doc.get('format')!r}, "
                                f"expected '{AIRFRAME_FILE_FORMAT}'); make one with `raptor sample`")
        if doc.get("version") != AIRFRAME_FILE_VERSION:
            raise AirframeError(f"'{path}': airframe file version {doc.get('version')!r} is not supported "
                                f"(this raptor reads version {AIRFRAME_FILE_VERSION})")
        entries = doc.get("airframes")
    else:
        entries = doc
    if not isinstance(entries, list) or not entries:
        raise AirframeError(f"'{path}': 'airframes' must be a non-empty list")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "parameters" not in e:
            raise AirframeError(f"'{path}': airframe #{i} has no 'parameters'")
        name = str(e.get("name", f"airframe_{i}"))
        if not isinstance(e["parameters"], dict) or not isinstance(e.get("meta", {}), dict):
            raise AirframeError(f"'{path}': airframe #{i} ('{name}'): 'parameters' and 'meta' must be objects")
        try:
            out.append(Airframe(name, e["parameters"], dict(e.get("meta", {}))))
        except AirframeError as err:
            raise AirframeError(f"'{path}', airframe #{i} ('{name}'): {err}") from None
    weak = [f"{a.name} ({a.thrust_to_weight:.2f})" for a in out if a.thrust_to_weight < 1.0]
    if weak:
        print(f"raptor: warning: {path}: thrust-to-weight below 1, these airframes cannot hover: "
              f"{', '.join(weak[:5])}{' ...' if len(weak) > 5 else ''}", file=sys.stderr, flush=True)
    return out


# sampled:N:SEED[:KIND] -> (ranges, name prefix)
_SAMPLED_KINDS = {"": (RandomizationRanges(), "dr"), "race": (RACE_RANGES, "race"),
                  "race-fast": (RACE_FAST_RANGES, "rfast")}


def resolve_airframes(spec: str) -> list[Airframe]:
    """Airframes from a spec: 'named', 'NAME,NAME,...', a file path, 'sampled:N:SEED', 'sampled:N:SEED:race' (the
    race-class option: thrust-to-weight up to 12, raptor.sim.sampling.RACE_RANGES) or 'sampled:N:SEED:race-fast' (race
    class with race motors, RACE_FAST_RANGES); 'SPEC+SPEC' joins specs in order
    (e.g. 'sampled:1000:0+sampled:1000:1:race': ids 0-999 the first, 1000-1999 the second)."""
    spec = spec.strip()
    if "+" in spec:
        parts = [p.strip() for p in spec.split("+")]
        if not all(parts):
            raise AirframeError(f"bad airframe spec '{spec}': an empty part around '+'; write e.g. "
                                "sampled:1000:0+sampled:200:1:race")
        joined = [a for p in parts for a in resolve_airframes(p)]
        names = [a.name for a in joined]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})[:3]
            raise AirframeError(f"bad airframe spec '{spec}': its parts share airframes ({', '.join(dup)}); join "
                                "different sets (another seed, or the race sampler)")
        return joined
    if spec == "named":
        return [named_airframe(n) for n in NAMED_SET]
    if spec.startswith("sampled:"):
        parts = spec.split(":")
        try:
            n, seed = int(parts[1]), int(parts[2]) if len(parts) > 2 else 0
            kind = parts[3] if len(parts) == 4 else ""
            if len(parts) > 4 or kind not in _SAMPLED_KINDS:
                raise ValueError
        except (ValueError, IndexError):
            raise AirframeError(f"bad airframe spec '{spec}': use sampled:N:SEED, sampled:N:SEED:race or "
                                "sampled:N:SEED:race-fast, e.g. sampled:100:1") from None
        if n <= 0:
            raise AirframeError(f"bad airframe spec '{spec}': N must be positive")
        ranges, prefix = _SAMPLED_KINDS[kind]
        afs = sample_airframes(n, seed, ranges)
        if kind:  # distinct names: the same seed's default airframes are other airframes
            afs = [Airframe(a.name.replace("dr", prefix, 1), a.parameters, {**a.meta, "ranges": kind})
                   for a in afs]
        return afs
    if os.path.sep in spec or spec.endswith(".json") or Path(spec).is_file():
        return load_airframes(spec)
    return [named_airframe(n.strip()) for n in spec.split(",") if n.strip()]


