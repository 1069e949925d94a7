"""Write schema/stack-config.schema.json, the JSON Schema editors use on Pulumi.<stack>.yaml.

    python -m tools.gen_schema          # regenerate
    python -m tools.gen_schema --check  # exit 1 when the committed file is stale
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from components.stack_config import stack_file_schema
from tools.generated import write_or_check

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema" / "stack-config.schema.json"


def render() -> str:
    return json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(SCHEMA_FILE, render(), "tools.gen_schema", argv)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
