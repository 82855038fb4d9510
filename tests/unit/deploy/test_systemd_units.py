"""deploy/systemd: every unit parses, and every command it runs exists with those options.

systemd itself is not on the test machines; what can go stale here is the command lines (a
renamed management command, a Daphne option that does not exist), so those are checked with
Daphne's own argument parser and Django's command registry.
"""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
from daphne.cli import CommandLineInterface
from django.core.management import get_commands

SYSTEMD = Path(__file__).resolve().parents[3] / "deploy" / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))
VENV_BIN = "/srv/collab/.venv/bin/"


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(path.read_text().replace("\\\n", " "))
    return parser


def test_there_are_units_for_the_workers_and_the_samplers():
    names = {path.name for path in UNITS}
    assert {"collab-daphne@.service", "collab-health-sampler.service"} <= names


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_command_exists_with_its_options(path: Path):
    service = unit(path)["Service"]
    argv = shlex.split(service["ExecStart"].replace("%i", "8001"))
    if argv[0] == f"{VENV_BIN}daphne":
        options = CommandLineInterface().parser.parse_args(argv[1:])
        assert options.application == "config.asgi:application"
        assert options.host == "127.0.0.1" and options.proxy_headers  # behind nginx only
    elif argv[0] == f"{VENV_BIN}python":
        assert argv[1] == "manage.py"
        assert argv[2] in get_commands(), f"{path.name}: no command {argv[2]}"
    else:
        assert argv[0] == "/bin/sh", f"{path.name}: unexpected {argv[0]}"
    assert service.get("Restart") in (None, "always", "on-failure")


def test_the_timer_starts_its_service():
    timer = SYSTEMD / "collab-prune-events.timer"
    assert (SYSTEMD / timer.name.replace(".timer", ".service")).exists()
    assert unit(timer)["Timer"]["OnCalendar"]
