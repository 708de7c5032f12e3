"""Regenerate attn_doctor/schemas/*.json from the dataclasses (run after changing them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from attn_doctor.schema import SCHEMAS  # noqa: E402


def main() -> int:
    out = ROOT / "attn_doctor" / "schemas"
    out.mkdir(exist_ok=True)
    for name, build in SCHEMAS.items():
        (out / name).write_text(json.dumps(build(), indent=2, sort_keys=True) + "\n")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
