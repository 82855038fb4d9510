"""Pure modules import only the standard library and other pure modules (STYLE.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_MODULES = {
    "collab.ot": "collab/ot.py",
    "collab.otclient": "collab/otclient.py",
    "comments.mentions": "comments/mentions.py",
    "comments.targets": "comments/targets.py",
    "config.errors": "config/errors.py",
    "config.client.backoff": "config/client/backoff.py",
    "config.realtime.envelope": "config/realtime/envelope.py",
    "config.realtime.groups": "config/realtime/groups.py",
    "config.realtime.ratelimit": "config/realtime/ratelimit.py",
    "config.realtime.resume": "config/realtime/resume.py",
    "forms_live.merge": "forms_live/merge.py",
    "forms_live.analytics": "forms_live/analytics.py",
    "forms_live.validation": "forms_live/validation.py",
    "monitoring.alerts": "monitoring/alerts.py",
    "monitoring.sampling": "monitoring/sampling.py",
    "presence.rooms": "presence/rooms.py",
    "presence.state": "presence/state.py",
}
# Third-party modules that are pure themselves, allowed for one module each, with the reason.
EXTRA_ALLOWED = {
    # User-written patterns need a match timeout (ReDoS), which the standard library's re lacks.
    "forms_live.validation": {"regex"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module or "")
    return names


def is_allowed(module: str, importer: str | None = None) -> bool:
    return (
        module == "__future__"
        or module.split(".")[0] in sys.stdlib_module_names
        or module in PURE_MODULES
        or module in EXTRA_ALLOWED.get(importer or "", set())
    )


@pytest.mark.parametrize("module", sorted(PURE_MODULES))
def test_pure_module_imports_only_the_standard_library_and_pure_modules(module):
    imports = imported_modules(ROOT / PURE_MODULES[module])

    assert {name for name in imports if not is_allowed(name, module)} == set()


def test_the_import_check_notices_a_django_import(tmp_path):
    impure = tmp_path / "impure.py"
    impure.write_text("import json\nfrom django.conf import settings\nimport redis.asyncio\n")

    assert {name for name in imported_modules(impure) if not is_allowed(name)} == {
        "django.conf",
        "redis.asyncio",
    }


def test_an_extra_allowance_holds_for_its_module_only():
    assert is_allowed("regex", "forms_live.validation")
    assert not is_allowed("regex", "presence.state")
    assert not is_allowed("regex")
