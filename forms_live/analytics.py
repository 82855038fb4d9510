"""Per-form figures that merge: the figures of two sets of submissions are the merge of each
set's figures, so they can be kept per day, per shard or per worker and added up later. Pure.

One submission, as the caller reads it (times are epoch seconds, passed in):

    SubmissionFacts(status="submitted", started_at=1700000000.0, submitted_at=1700000095.5,
                    last_field="email")

``FormStats.of`` counts them at ``now``; ``summary`` is what the dashboard receives (JSON):

    {"views": 40, "starts": 12, "completions": 9, "abandoned": 3, "completion_rate": 0.75,
     "median_seconds": 95, "drop_off": {"email": 2, "": 1}}

- a start is any submission; a completion one submitted, processing or completed;
- abandoned: still in progress and idle (no activity since ``last_active_at``, or since the start
  when that is unknown) for at least ``abandon_after`` seconds;
- durations: whole seconds from start to submit (rounded down) -> how many took that long;
- drop_off: the last field an abandoned respondent touched -> how many ("" when none).

Counts are kept as sorted ``(key, count)`` pairs, so equal figures compare and hash equal
however they were built. ``FormStats()`` is the identity of ``merge``, which is associative and
commutative.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STATUSES = ("in_progress", "submitted", "processing", "completed")
COMPLETED = frozenset({"submitted", "processing", "completed"})
ABANDON_AFTER = 1800.0  # seconds


@dataclass(frozen=True, slots=True)
class SubmissionFacts:
    status: str  # one of STATUSES
    started_at: float
    submitted_at: float | None  # None while in progress
    last_field: str | None  # key of the last field the respondent touched
    last_active_at: float | None = None  # the respondent's last edit; None: the start


@dataclass(frozen=True, slots=True)
class FormStats:
    views: int = 0
    starts: int = 0
    completions: int = 0
    abandoned: int = 0
    durations: tuple[tuple[int, int], ...] = ()  # (whole seconds, count), sorted
    drop_off: tuple[tuple[str, int], ...] = ()  # (field key or "", count), sorted

    def __post_init__(self) -> None:
        # Pairs in any order, or a mapping, become the one canonical form, so that equality
        # and hashing do not depend on how the figures were put together.
        object.__setattr__(self, "durations", _canonical(self.durations))
        object.__setattr__(self, "drop_off", _canonical(self.drop_off))

    @classmethod
    def of(
        cls,
        facts: Iterable[SubmissionFacts],
        *,
        views: int = 0,
        now: float,
        abandon_after: float = ABANDON_AFTER,
    ) -> FormStats:
        starts = completions = 0
        durations: Counter[int] = Counter()
        drop_off: Counter[str] = Counter()
        for fact in facts:
            starts += 1
            if fact.status in COMPLETED:
                completions += 1
                if fact.submitted_at is not None:
                    # A submit stamped before its start (clock skew) counts as instant.
                    durations[max(0, int(fact.submitted_at - fact.started_at))] += 1
            elif is_abandoned(fact, now=now, abandon_after=abandon_after):
                drop_off[fact.last_field or ""] += 1
        return cls(
            views=views,
            starts=starts,
            completions=completions,
            abandoned=drop_off.total(),
            durations=_canonical(durations),
            drop_off=_canonical(drop_off),
        )

    def merge(self, other: FormStats) -> FormStats:
        return FormStats(
            views=self.views + other.views,
            starts=self.starts + other.starts,
            completions=self.completions + other.completions,
            abandoned=self.abandoned + other.abandoned,
            durations=_canonical((*self.durations, *other.durations)),
            drop_off=_canonical((*self.drop_off, *other.drop_off)),
        )

    def summary(self) -> dict[str, Any]:
        rate = round(self.completions / self.starts, 4) if self.starts else 0.0
        return {
            "views": self.views,
            "starts": self.starts,
            "completions": self.completions,
            "abandoned": self.abandoned,
            "completion_rate": rate,
            "median_seconds": lower_median(self.durations),
            "drop_off": dict(sorted(self.drop_off, key=lambda pair: (-pair[1], pair[0]))),
        }


def is_abandoned(fact: SubmissionFacts, *, now: float, abandon_after: float) -> bool:
    if fact.status != "in_progress":
        return False
    last = fact.started_at if fact.last_active_at is None else fact.last_active_at
    return now - last >= abandon_after


def lower_median(counts: Iterable[tuple[int, int]]) -> int | None:
    """The lower median of the multiset given as sorted ``(value, count)`` pairs."""
    pairs = list(counts)
    total = sum(count for _, count in pairs)
    if not total:
        return None
    seen, wanted = 0, (total - 1) // 2
    for value, count in pairs:
        seen += count
        if seen > wanted:
            return value
    raise AssertionError("unreachable: the counts add up to total")


def _canonical(
    counts: Mapping[Any, int] | Iterable[tuple[Any, int]],
) -> tuple[tuple[Any, int], ...]:
    items = counts.items() if isinstance(counts, Mapping) else counts
    summed: Counter[Any] = Counter()
    for key, count in items:
        summed[key] += count
    return tuple(sorted((key, count) for key, count in summed.items() if count))
