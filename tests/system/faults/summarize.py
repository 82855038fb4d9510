"""Print the lines ``make reliability`` recorded (tests/system/faults/scale.py) as markdown.

python -m tests.system.faults.summarize reliability-results.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(lines: list[dict]) -> str:
    rows = ["| ID | scale | recorded at | figures |", "|---|---|---|---|"]
    for line in sorted(lines, key=lambda item: (item["id"], item["at"])):
        figures = {k: v for k, v in line.items() if k not in {"id", "scale", "at"}}
        shown = "; ".join(f"{key}: {json.dumps(value)}" for key, value in figures.items())
        rows.append(f"| {line['id']} | {line['scale']} | {line['at']} | {shown} |")
    return "\n".join(rows)


def main(path: str) -> None:
    lines = [json.loads(text) for text in Path(path).read_text().splitlines() if text.strip()]
    print(table(lines))


if __name__ == "__main__":
    main(sys.argv[1])
