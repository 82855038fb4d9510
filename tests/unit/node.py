"""Running a JavaScript snippet in Node for the tests of the browser modules.

    result = run_node('import * as ot from "file:///.../ot.js"; ...', {"cases": [...]})
    static_module("forms_live/builder.js")   # its file URI in a copy of the /static/ tree

The snippet reads ``data`` (the JSON given) and prints one JSON value, which is returned.
Node is part of the test environment (.ci/services installs it), so its absence fails.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

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


@functools.cache
def _static_tree() -> Path:
    """The apps' static files laid out as the browser finds them under /static/ (as
    collectstatic would), so that modules importing ``../realtime/page.js`` resolve in Node.
    Copied, not linked: Node resolves a link to its target and would look beside that."""
    root = Path(tempfile.mkdtemp(prefix="static-"))
    for static in sorted(ROOT.glob("*/static")) + sorted(ROOT.glob("config/*/static")):
        shutil.copytree(static, root, dirs_exist_ok=True)
    return root


def static_root() -> Path:
    return _static_tree()


def static_module(path: str) -> str:
    """The file URI of ``/static/<path>`` in that tree."""
    module = _static_tree() / path
    assert module.exists(), f"no static file {path}"
    return module.as_uri()
