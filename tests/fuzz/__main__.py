"""``make fuzz``, the nightly job (RELIABILITY.md P9): every harness for ``--seconds`` in turn.

    python -m tests.fuzz --seconds 3600 --out .fuzz

Each harness keeps its corpus in ``<out>/<harness>/`` from night to night (it grows, and each
night starts where the last one stopped), reads the crashes already fixed from
``tests/fuzz/regressions/<harness>/``, writes a crashing input to ``<out>/crashes/`` and its
log to ``<out>/<harness>.log``. One summary line per harness; the exit status is 1 if any
crashed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HARNESSES = ("envelope", "ot", "merge")
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
# libFuzzer's progress lines: "#4096 pulse cov: 486 ft: 611 corp: 46/5541b ... exec/s: 2048"
_PROGRESS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/", re.MULTILINE)
_SPEED = re.compile(r"^stat::average_exec_per_sec:\s+(\d+)", re.MULTILINE)


def libfuzzer_flags(seconds: int, crashes: Path, harness: str) -> list[str]:
    return [
        f"-max_total_time={seconds}",
        f"-artifact_prefix={crashes}/{harness}-",
        "-timeout=10",  # one input taking 10 s is a hang: reported as a crash
        "-max_len=8192",  # frames are capped at 64 KiB; the checks bite well below that
        "-print_final_stats=1",
    ]


def run(harness: str, seconds: int, out: Path) -> tuple[int, str]:
    corpus, crashes = out / harness, out / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    fixed = REGRESSIONS / harness  # read, never written: libFuzzer adds to the first only
    command = [
        sys.executable,
        "-m",
        f"tests.fuzz.harness_{harness}",
        str(corpus),
        *([str(fixed)] if fixed.is_dir() else []),
        *libfuzzer_flags(seconds, crashes, harness),
    ]
    log = out / f"{harness}.log"
    with log.open("w") as output:
        status = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode
    text = log.read_text(errors="replace")
    line = summary(harness, status, text)
    if status != 0:  # the traceback and the crash file's name, where the nightly log shows them
        line += "\n" + "\n".join(text.splitlines()[-30:])
    return status, line


def summary(harness: str, status: int, log: str) -> str:
    progress = _PROGRESS.findall(log)
    speed = _SPEED.search(log)
    runs, cov, ft, corpus = progress[-1] if progress else ("0", "?", "?", "?")
    outcome = "ok" if status == 0 else f"CRASH (exit {status}), see the log"
    return (
        f"{harness:<9} {outcome}: {runs} runs, {speed[1] if speed else '?'} exec/s, "
        f"cov {cov}, ft {ft}, corpus {corpus}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3600, help="per harness")
    parser.add_argument("--out", type=Path, default=Path(".fuzz"))
    parser.add_argument(
        "harnesses", nargs="*", help=f"some of {', '.join(HARNESSES)}; all by default"
    )
    arguments = parser.parse_args()
    unknown = set(arguments.harnesses) - set(HARNESSES)
    if unknown:
        parser.error(f"no harness {', '.join(sorted(unknown))}; there are {', '.join(HARNESSES)}")
    failed = False
    for harness in arguments.harnesses or HARNESSES:
        status, line = run(harness, arguments.seconds, arguments.out)
        print(line, flush=True)
        failed = failed or status != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
