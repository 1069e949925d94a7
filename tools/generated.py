"""The committed files the project generates (the stack-config schema, the dashboard picture): write or check."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_or_check(path: Path, text: str, module: str, argv: list[str]) -> int:
    """With ``--check`` in argv: 1 (and how to fix it) when the committed file differs from ``text``, else 0.
    Without: write it."""
    if "--check" in argv:
        if not path.exists() or path.read_text() != text:
            print(f"{path.name} is stale: run `python -m {module}` and commit the result", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    print(f"wrote {path.relative_to(ROOT)}")
    return 0
