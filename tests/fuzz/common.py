"""What the harnesses share: instrumentation of our packages, Django without its database, and
the libFuzzer entry point.

    with instrumented(__name__ == "__main__"):
        django_setup()
        from collab import ot
    ...
    if __name__ == "__main__":
        fuzz(TestOneInput, seeds=[b'{"type": "session.heartbeat"}'])
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import atheris

# Coverage feedback from our code only: instrumenting Django and the standard library would
# slow every execution and steer the fuzzer towards code we do not own.
OUR_PACKAGES = ("config", "collab", "comments", "forms_live", "presence", "monitoring")
# Error codes that mean "our fault" (a 500 or 503): client input must never earn them.
SERVER_FAULTS = frozenset({"internal", "unavailable"})


def instrumented(fuzzing: bool) -> contextlib.AbstractContextManager[Any]:
    """Instrument our modules imported in the block, when run as a fuzzer. Imported by pytest
    (tests/unit/test_fuzz_harnesses.py) a harness leaves the modules as they are."""
    if fuzzing:
        return atheris.instrument_imports(include=OUR_PACKAGES)
    return contextlib.nullcontext()


def django_setup() -> None:
    """Settings and apps as the test run has them (tests/testenv.py), with no database: a
    validator that reached for one would make the fuzzer report a crash, not pass quietly."""
    from django.apps import apps

    if apps.ready:  # under pytest: pytest-django did it, and blocks the database itself
        return
    import django
    from django.db.backends.base.base import BaseDatabaseWrapper

    import tests.testenv  # noqa: F401 - sets the environment the settings read

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    BaseDatabaseWrapper.ensure_connection = _no_database  # type: ignore[method-assign]


def _no_database(self: Any) -> None:
    raise RuntimeError("A fuzz harness must not touch the database.")


def expect(condition: bool, message: str, *details: Any) -> None:
    """An assert that ``python -O`` keeps: a broken property is the fuzzer's crash."""
    if not condition:
        raise AssertionError(message, *details)


def fuzz(test_one_input: Callable[[bytes], None], seeds: Iterable[bytes] = ()) -> None:
    """libFuzzer over ``test_one_input`` with the command line's flags and corpus directories.

    ``seeds`` go into the first corpus directory (named by content, so again each night costs
    nothing): with them the fuzzer starts from inputs that reach deep, not from an empty one.
    """
    corpus = next(_directories(sys.argv[1:]), None)
    if corpus is not None:
        for seed in seeds:
            (corpus / f"seed-{hashlib.sha256(seed).hexdigest()[:16]}").write_bytes(seed)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


def _directories(arguments: list[str]) -> Iterator[Path]:
    return (Path(a) for a in arguments if not a.startswith("-") and Path(a).is_dir())
