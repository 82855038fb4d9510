"""RELIABILITY.md P9: atheris (libFuzzer) harnesses, run for an hour each night by ``make fuzz``.

Each ``harness_<name>.py`` is a program, not a pytest module:

    python -m tests.fuzz.harness_ot .fuzz/ot -max_total_time=60   # fuzz, corpus in .fuzz/ot
    python -m tests.fuzz.harness_ot .fuzz/crashes/ot-crash-1f2e   # replay one input
    python -m tests.fuzz --seconds 60                              # every harness, as nightly

A harness crashes on anything but our typed error (``AppError``) and on a broken property
(``AssertionError``). tests/unit/test_fuzz_harnesses.py runs each briefly in the default run.
"""
