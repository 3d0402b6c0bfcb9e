"""firmware/raptor_schema.h: the numbers the C side shares with Python, generated from `raptor.conventions`.

The C core (raptor_policy.h/.c), the pybind module, the target adapters and glue include it instead of typing the
numbers again; tests/test_export.py fails when the committed header is not what this module generates.

    python -m raptor.policy_export.schema            # rewrite firmware/raptor_schema.h after changing conventions
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from raptor import conventions as c

HEADER = "raptor_schema.h"


def _f32(x: float) -> str:
    return f"{float(np.float32(x)):.9g}f"


def schema_header() -> str:
    rows = [
        ("RAPTOR_INPUT_DIM", str(c.STUDENT_OBS_DIM), "network input: [p, R(q) row-major, v, w, previous action]"),
        ("RAPTOR_HIDDEN_DIM", str(c.HIDDEN_DIM), "GRU state"),
        ("RAPTOR_GATES_DIM", str(3 * c.HIDDEN_DIM), "GRU gates r, z, n (PyTorch order)"),
        ("RAPTOR_OUTPUT_DIM", str(c.ACTION_DIM), "actions, motor order FR, BR, BL, FL"),
        ("RAPTOR_NUM_PARAMETERS", str(c.NUM_PARAMETERS), "weights of the student"),
        ("RAPTOR_NATIVE_INTERVAL_NS", f"{round(c.DT_NATIVE_S * 1e9)}ULL", "native step: the GRU commits every 10 ms"),
        ("RAPTOR_RESET_HISTORY", _f32(c.RESET_ACTION_HISTORY), "previous-action input after a reset (2 x 0.66 - 1)"),
        ("RAPTOR_SELF_TEST_TOLERANCE", _f32(c.SELF_TEST_TOLERANCE), "largest self-test error a core flies with"),
        ("RAPTOR_HEADING_MIN_NORM2", _f32(c.HEADING_MIN_NORM2), "no heading below this |(R00, R10)|^2"),
    ]
    rows += [(f"RAPTOR_MOTOR_INDEX_{t.upper()}", "{" + ", ".join(map(str, idx)) + "}",
              f"policy motor i -> {t} motor index") for t, idx in c.MOTOR_INDEX.items()]
    width = max(len(f"#define {n} {v}") for n, v, _ in rows) + 2
    lines = [f"#define {n} {v}".ljust(width) + f"/* {d} */" for n, v, d in rows]
    return (f"/* {HEADER}: generated from raptor.conventions ({c.CONVENTIONS_VERSION}) by\n"
            " * `python -m raptor.policy_export.schema`. Do not edit; tests check it is current. */\n"
            "#ifndef RAPTOR_SCHEMA_H\n#define RAPTOR_SCHEMA_H\n\n"
            f'#define RAPTOR_CONVENTIONS_VERSION "{c.CONVENTIONS_VERSION}"\n' + "\n".join(lines) +
            "\n\n#endif /* RAPTOR_SCHEMA_H */\n")


def header_path() -> Path:
    return Path(__file__).resolve().parents[1] / "firmware" / HEADER


def main() -> int:
    path = header_path()
    path.write_text(schema_header())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
