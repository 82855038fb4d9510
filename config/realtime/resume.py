"""When a socket that comes back with ``since`` gets the missed events, not a snapshot. Pure.

if replayable(since, current):
    missed = read(after=since, upto=current)
    if gap_free([m.seq for m in missed], since, current): ...   # else a snapshot
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_REPLAY = 1000  # past this, a fresh snapshot is smaller and faster than the replay


def replayable(since: int | None, current: int, limit: int = MAX_REPLAY) -> bool:
    return since is not None and since <= current and current - since <= limit


def gap_free(seqs: Sequence[int], after: int, upto: int) -> bool:
    """Exactly ``after + 1 .. upto``: nothing of the stream was pruned in between."""
    return list(seqs) == list(range(after + 1, upto + 1))
