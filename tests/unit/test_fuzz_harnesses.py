"""The atheris harnesses of ``make fuzz`` (tests/fuzz/, RELIABILITY.md P9), kept working in the
default run: each fuzzes for a few thousand inputs, and each is shown to catch a planted bug, so
that a clean nightly hour means something."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from collab import ot
from config.errors import AppError, ErrorCode
from config.realtime.envelope import parse_command
from forms_live import merge
from tests.fuzz import harness_envelope, harness_merge, harness_ot
from tests.fuzz.__main__ import HARNESSES

ROOT = Path(__file__).resolve().parents[2]
MODULES = {"envelope": harness_envelope, "ot": harness_ot, "merge": harness_merge}
# Inputs that once crashed a harness, as libFuzzer wrote them (README: "Fuzzing").
RECORDED = sorted((ROOT / "tests" / "fuzz" / "regressions").glob("*/*"))
# A few seconds each, most of it starting Python and Django; fixed seeds, so a failure repeats.
SMOKE_RUNS = 3000


def test_every_harness_is_run_and_smoke_tested():
    assert set(MODULES) == set(HARNESSES)


@pytest.mark.parametrize("harness", HARNESSES)
def test_a_short_fuzz_run_finds_nothing(harness, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    command = [
        sys.executable,
        "-m",
        f"tests.fuzz.harness_{harness}",
        str(corpus),
        f"-runs={SMOKE_RUNS}",
        "-seed=1",
        f"-artifact_prefix={tmp_path}/",
    ]

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Done {SMOKE_RUNS} runs" in done.stderr
    assert not list(tmp_path.glob("crash-*"))


@pytest.mark.parametrize("recorded", RECORDED, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_recorded_crash_stays_fixed(recorded):
    MODULES[recorded.parent.name].TestOneInput(recorded.read_bytes())


def first_failure(test_one_input: Callable[[bytes], None], tries: int = 3000) -> Exception | None:
    """What the first of ``tries`` random inputs raises, if any does."""
    rng = random.Random(0)
    for _ in range(tries):
        try:
            test_one_input(rng.randbytes(rng.randrange(4, 64)))
        except Exception as error:
            return error
    return None


# --- envelope --------------------------------------------------------------------------------


def routed_command_types() -> set[str]:
    from config.asgi import websocket_routes

    consumers = {getattr(route.callback, "consumer_class", None) for route in websocket_routes}
    consumers.discard(None)
    assert consumers
    return {type_ for consumer in consumers for type_ in consumer.command_table}


def test_the_envelope_harness_knows_every_command_and_seeds_each_one_it_checks():
    validated = {type_ for type_, check in harness_envelope.VALIDATORS.items() if check}
    seeded = {}
    for seed in harness_envelope.SEEDS:
        try:
            command = parse_command(seed.decode(), harness_envelope.LIMITS)
        except AppError:
            continue  # the near misses
        seeded[command.type] = command.data

    assert set(harness_envelope.VALIDATORS) == routed_command_types()
    assert validated <= seeded.keys()
    for type_ in validated:  # a seed the checks accept, so mutations start deep inside them
        harness_envelope.VALIDATORS[type_](seeded[type_])


@pytest.mark.parametrize(
    ("planted", "caught"),
    [
        (TypeError("a bug"), TypeError),
        (AppError(ErrorCode.INTERNAL, "a 500"), AssertionError),
        (AppError(ErrorCode.INVALID, "a refusal"), None),
    ],
)
def test_the_envelope_harness_passes_only_typed_refusals(monkeypatch, planted, caught):
    def validate(op, doc_length=None):
        raise planted

    monkeypatch.setattr(ot, "validate", validate)
    frame = next(seed for seed in harness_envelope.SEEDS if b"collab.op.submit" in seed)

    if caught is None:
        harness_envelope.TestOneInput(frame)
    else:
        with pytest.raises(caught):
            harness_envelope.TestOneInput(frame)


# --- ot and merge ----------------------------------------------------------------------------


def test_the_ot_harness_catches_a_transform_that_ignores_the_side(monkeypatch):
    transform = ot.transform
    monkeypatch.setattr(ot, "transform", lambda op, other, side: transform(op, other, "left"))

    failure = first_failure(harness_ot.TestOneInput)

    assert isinstance(failure, AssertionError)
    assert failure.args[0] == "TP1"


def test_the_ot_harness_lets_an_untyped_error_through(monkeypatch):
    def normalize(op):
        raise ValueError("a bug")

    monkeypatch.setattr(ot, "normalize", normalize)

    assert isinstance(first_failure(harness_ot.TestOneInput), ValueError)


def test_the_merge_harness_catches_a_merge_on_the_wrong_side(monkeypatch):
    transform = merge.transform
    monkeypatch.setattr(merge, "transform", lambda op, other, side: transform(op, other, "right"))

    failure = first_failure(harness_merge.TestOneInput)

    assert isinstance(failure, AssertionError)
    assert failure.args[0] == "server and client diverge"


def test_the_merge_harness_catches_options_that_lose_an_addition(monkeypatch):
    monkeypatch.setattr(merge, "merge_options", lambda base, current, proposed: list(current))

    failure = first_failure(harness_merge.TestOneInput)

    assert isinstance(failure, AssertionError)
