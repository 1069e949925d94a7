"""Write schema/stack-config.schema.json, the JSON Schema editors use on Pulumi.<stack>.yaml.

    python -m tools.gen_schema          # regenerate
    python -m tools.gen_schema --check  # exit 1 when the committed file is stale
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from components.stack_config import stack_file_schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema" / "stack-config.schema.json"


def render() -> str:
    return json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text() != text:
            print(f"{SCHEMA_FILE.name} is stale: run `python -m tools.gen_schema`", file=sys.stderr)
            return 1
        return 0
    SCHEMA_FILE.parent.mkdir(exist_ok=True)
    SCHEMA_FILE.write_text(text)
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
