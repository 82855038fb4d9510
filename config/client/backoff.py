"""When a client tries to connect again: exponential backoff with full jitter, and a circuit
breaker. Pure: time and randomness are arguments.

Backoff (AWS's "full jitter"): after the n-th failure in a row (n = 0 for the first), wait a
uniformly random time in ``[0, min(cap, base * 2**n)]``, so that thousands of clients cut off by
one restart do not come back in lockstep:

    delay = backoff_delay(failures=3, random=0.42)         # 0.42 * min(30, 0.5 * 8) = 1.68 s

Breaker: after ``threshold`` failures in a row it opens, and no attempt is made for about
``cooldown`` seconds (jittered, from half to one and a half times it: clients that all failed
together must not all come back together when it closes); then it is half-open: one attempt may
go, which closes it on success and opens it again on failure.

    breaker = Breaker()
    breaker.allows(now=100.0)           # True
    breaker = breaker.failed(now=100.0) # five of these in a row: open until 130.0
                                        # (random=0.5, the default; 115.0 to 145.0 otherwise)
    breaker.state(now=131.0)            # "half_open"
"""

from __future__ import annotations

from dataclasses import dataclass, replace

BASE_SECONDS = 0.5
CAP_SECONDS = 30.0


def backoff_delay(
    *, failures: int, random: float, base: float = BASE_SECONDS, cap: float = CAP_SECONDS
) -> float:
    """Seconds to wait after ``failures`` consecutive failures; ``random`` in [0, 1)."""
    if failures < 0 or not 0.0 <= random <= 1.0:
        raise ValueError("failures must be >= 0 and random in [0, 1]")
    # 2**failures grows without bound; past the cap it no longer matters.
    ceiling = cap if failures >= 64 else min(cap, base * 2**failures)
    return random * ceiling


@dataclass(frozen=True)
class Breaker:
    threshold: int = 5
    cooldown: float = 30.0
    failures: int = 0  # in a row
    open_until: float | None = None  # set while open (and half-open, once it is past)

    def state(self, *, now: float) -> str:
        if self.open_until is None:
            return "closed"
        return "open" if now < self.open_until else "half_open"

    def allows(self, *, now: float) -> bool:
        return self.state(now=now) != "open"

    def failed(self, *, now: float, random: float = 0.5) -> Breaker:
        """``random`` in [0, 1]: where in [cooldown / 2, 3 * cooldown / 2] it stays open. Found
        by RELIABILITY F11 (a reconnect storm): a fixed cooldown lined every client up again."""
        failures = self.failures + 1
        if self.state(now=now) == "half_open" or failures >= self.threshold:
            cooldown = self.cooldown * (0.5 + random)
            return replace(self, failures=failures, open_until=now + cooldown)
        return replace(self, failures=failures)

    def succeeded(self) -> Breaker:
        return replace(self, failures=0, open_until=None)
