"""Running a JavaScript snippet in Node for the tests of the browser modules.

    result = run_node('import * as ot from "file:///.../ot.js"; ...', {"cases": [...]})

The snippet reads ``data`` (the JSON given) and prints one JSON value, which is returned.
Node is part of the test environment (.ci/services installs it), so its absence fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess

PRELUDE = (
    'let input = ""; for await (const chunk of process.stdin) input += chunk;\n'
    "const data = JSON.parse(input);\n"
)


def run_node(imports: str, body: str, data: object = None) -> object:
    node = shutil.which("node")
    assert node, "node is needed for the JavaScript client's tests (.ci/services installs it)"
    result = subprocess.run(
        [node, "--input-type=module", "-e", imports + "\n" + PRELUDE + body],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
