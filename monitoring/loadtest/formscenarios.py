"""The ``forms`` scenario (DESIGN sections 5 and 9; issue 6), run from the parent process.

    result = run_forms(target, FormsOptions(forms=10, respondents=200, dashboards=2, rate=100))

It reuses ``scenarios.Run`` with the children of forms.py. Before any window, in the workers'
database: ``forms`` published forms of four required fields (``FIELDS``), form f owned by load
user f + 1; respondent r is load user forms + r + 1 and fills form r mod forms. Sockets
0 .. forms x dashboards - 1 are the owners' dashboards (socket i watches form i // dashboards),
the others the respondents; socket i talks to URL i mod N.

Every socket connects (a respondent's fill snapshot starts its submission); then the
respondents send ``rate`` updates per second in total, field by field, a share of first tries
wrong (``invalid_share``) and put right by the next update; each ack must carry the wrong
value's error codes, or none. A respondent submits as soon as its last update is answered.
Then the run waits until every dashboard has shown each submission of its form at its final
revision. The "fill" window covers all of it: its server CPU is the cost of the updates, the
submits and the dashboards' updates.

Dashboard latency runs from an update's send to the first dashboard update that shows its
submission at its revision or later, both on ``time.monotonic()``. Afterwards, in PostgreSQL:
every respondent's submission is submitted with exactly the values sent, no submitted one has
errors, and each dashboard's last analytics agree with ``form_stats`` on starts and
completions. ``ok`` is false on any loss, refusal, wrong feedback or mismatch.
"""

from __future__ import annotations

import bisect
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from forms_live.models import Submission, SubmissionStatus
from forms_live.selectors import form_stats
from forms_live.services import field_add, form_change, form_create
from monitoring.loadtest import measure
from monitoring.loadtest.forms import (
    DASHBOARD,
    DASHBOARD_PATH,
    FILL_PATH,
    RESPONDENT,
    FormsPlan,
    SocketSpec,
    Step,
    forms_generator_main,
)
from monitoring.loadtest.scenarios import MARGIN_SECONDS, Run, Target, merged
from monitoring.loadtest.users import load_user_ids, mint_tickets

SETTLE_SECONDS = 0.5  # after the last snapshot, before the fill window
MAX_PROBLEMS = 20
DASHBOARD_LIMIT = 4  # updates per second per dashboard (forms_live.consumers.DASHBOARD_EVERY)
PLANS = ["free", "pro", "team"]
# What field_add gets beside the form: every field is required.
FIELDS = (
    {"key": "name", "type": "text", "label": "Name", "rules": {"min_length": 2, "max_length": 80}},
    {"key": "email", "type": "email", "label": "E-mail"},
    {"key": "age", "type": "number", "label": "Age", "rules": {"min": 18, "integer": True}},
    {"key": "plan", "type": "single_choice", "label": "Plan", "options": PLANS},
)
# Wrong first tries ({n}: the respondent's number) and the codes their acks must carry.
WRONG: dict[str, tuple[tuple[Any, tuple[str, ...]], ...]] = {
    "name": (("R", ("min_length",)), ("   ", ("required",))),
    "email": (("respondent{n}@example", ("email",)), ("respondent {n}", ("email",))),
    "age": ((17, ("min",)), (30.5, ("integer",)), ("forty", ("type",))),
    "plan": (("gold", ("choice",)),),
}


@dataclass
class FormsOptions:
    forms: int = 10
    respondents: int = 200  # in total, spread over the forms
    dashboards: int = 2  # per form, all the owner's
    rate: float = 100.0  # updates/s in, in total
    invalid_share: float = 0.3  # of the fields, a wrong first try
    settle: float = 15.0  # bound on the wait for answers, and then for every dashboard
    seed: int = 0


@dataclass(frozen=True)
class Setup:
    form_ids: list[int]
    respondent_ids: list[int]  # respondent r's user
    socket_users: list[int]  # socket i's user
    steps: list[tuple[Step, ...]]  # respondent r's updates
    values: list[dict[str, Any]]  # what respondent r's submission must hold


def respondent_steps(r: int, rng: random.Random, invalid_share: float) -> list[Step]:
    """Field by field: sometimes a wrong value first, then the right one."""
    right = {
        "name": f"Respondent {r}",
        "email": f"respondent{r}@example.com",
        "age": rng.randint(18, 99),
        "plan": rng.choice(PLANS),
    }
    steps: list[Step] = []
    for key in (spec["key"] for spec in FIELDS):
        if rng.random() < invalid_share:
            value, codes = rng.choice(WRONG[key])
            steps.append((key, value.format(n=r) if isinstance(value, str) else value, codes))
        steps.append((key, right[key], ()))
    return steps


def _field(n: int, spec: dict[str, Any]) -> dict[str, Any]:
    return {"client_msg_id": f"load-{n}", "required": True, **spec}


def create_forms(options: FormsOptions) -> Setup:
    user_ids = load_user_ids(options.forms + options.respondents)
    owners, respondents = user_ids[: options.forms], user_ids[options.forms :]
    users = get_user_model().objects.in_bulk(owners)
    form_ids = []
    with transaction.atomic():
        for f, owner_id in enumerate(owners):
            owner = users[owner_id]
            form = form_create(owner=owner, title=f"load form {f}")
            for n, spec in enumerate(FIELDS):
                field_add(user=owner, form_id=form.pk, base_revision=n, **_field(n, spec))
            publish = {"client_msg_id": "load-publish", "prop": "status", "value": "published"}
            form_change(user=owner, form_id=form.pk, base_revision=len(FIELDS), **publish)
            form_ids.append(form.pk)
    rng = random.Random(options.seed)  # noqa: S311
    steps = [
        tuple(respondent_steps(r, rng, options.invalid_share)) for r in range(len(respondents))
    ]
    values = [{key: value for key, value, _ in s} for s in steps]  # the last value of each key
    boards = [owner for owner in owners for _ in range(options.dashboards)]
    return Setup(form_ids, respondents, boards + respondents, steps, values)


def final_revisions(setup: Setup) -> dict[int, dict[int, int]]:
    """Form index -> {submission id: its revision}, as committed now."""
    index = {pk: f for f, pk in enumerate(setup.form_ids)}
    targets: dict[int, dict[int, int]] = {f: {} for f in index.values()}
    rows = Submission.objects.filter(form_id__in=setup.form_ids)
    for form_id, pk, revision in rows.values_list("form_id", "id", "revision"):
        targets[index[form_id]][pk] = revision
    return targets


class FormsRun(Run):
    entry = staticmethod(forms_generator_main)

    def __init__(self, target: Target, options: FormsOptions, setup: Setup) -> None:
        super().__init__(target, len(setup.socket_users), options.dashboards)
        self.options = options
        self.setup = setup
        self.boards = options.forms * options.dashboards
        self.planned: list[int] = []  # updates per process

    def _tickets(self) -> list[str]:
        return mint_tickets(self.setup.socket_users, ttl=int(self.connect_bound + 60))

    def _plans(self, tickets: list[str]) -> list[Any]:
        plans = super()._plans(tickets)
        self.planned = [sum(len(spec.steps) for spec in plan.sockets) for plan in plans]
        return plans

    def _plan(self, proc: int, specs: list[SocketSpec], common: dict[str, Any]) -> FormsPlan:
        rate = self.target.connect_rate * len(specs) / self.clients
        return FormsPlan(proc, sockets=specs, connect_rate=rate, **common)

    def _spec(self, i: int, url: str, ticket: str) -> SocketSpec:
        if i < self.boards:
            form = i // self.options.dashboards
            path = DASHBOARD_PATH.format(self.setup.form_ids[form])
            return SocketSpec(i, f"{url}{path}?ticket={ticket}", DASHBOARD, form)
        r = i - self.boards
        form = r % self.options.forms
        path = FILL_PATH.format(self.setup.form_ids[form])
        return SocketSpec(i, f"{url}{path}?ticket={ticket}", RESPONDENT, form, self.setup.steps[r])

    def fill(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[int, dict[int, int]]]:
        """The fill window: each process's share of the rate in proportion to its updates."""
        options = self.options
        total = sum(self.planned) or 1
        t0 = time.monotonic() + 0.5
        for (_, conn), planned in zip(self.children, self.planned, strict=True):
            conn.send(("fill", t0, options.rate * planned / total, options.settle))
        measure.wait_until(t0)
        with self.window("fill", unit="update") as window:
            bound = total / options.rate + options.settle + MARGIN_SECONDS
            filled = self._gather("filled", timeout=bound)
            targets = final_revisions(self.setup)
            for _, conn in self.children:
                conn.send(("watch", targets, options.settle))
            watched = self._gather("watched", timeout=options.settle + MARGIN_SECONDS)
            window["units"] = sum(1 for r in filled for acked in r["updates"]["acked"] if acked)
        return filled, watched, targets


# --- what the generators saw -------------------------------------------------------------------
def fill_figures(filled: list[dict[str, Any]]) -> dict[str, Any]:
    respondents = [r for report in filled for r in report["respondents"]]
    ack_ms = [
        (acked - sent) * 1000
        for report in filled
        for sent, acked in zip(report["updates"]["sent"], report["updates"]["acked"], strict=True)
        if acked
    ]
    accepted = [
        r
        for r in respondents
        if r.get("status") == SubmissionStatus.SUBMITTED and not r["duplicate"] and not r["errors"]
    ]
    sent = sum(len(r["updates"]["sent"]) - r["send_failures"] for r in filled)
    seconds = max((r["send_seconds"] for r in filled), default=0.0)
    return {
        "updates_scheduled": sum(r["scheduled"] for r in filled),
        "updates_sent": sent,
        "updates_unsent": sum(r["unsent"] for r in filled),
        "updates_acked": len(ack_ms),
        "updates_unanswered": sum(r["unanswered"] for r in filled),
        "send_seconds": round(seconds, 3),
        "send_lag_max_ms": round(max((r["send_lag_max_ms"] for r in filled), default=0.0), 2),
        "rate_in": round(sent / seconds, 1) if seconds else None,
        "feedback_checked": sum(r["feedback_checked"] for r in filled),
        "feedback_wrong": sum(r["feedback_wrong"] for r in filled),
        "feedback_examples": [e for r in filled for e in r["feedback_examples"]][:5],
        "update_ack_ms": measure.percentiles(ack_ms),
        "submits_sent": sum(1 for r in respondents if r["submit_sent"]),
        "submits_unanswered": sum(r["submits_unanswered"] for r in filled),
        "respondents_completed": len(accepted),
        "submit_refusals": [r for r in respondents if "submit_error" in r][:5],
        "submit_ack_ms": measure.percentiles(
            [(r["submit_acked"] - r["submit_sent"]) * 1000 for r in respondents if "status" in r]
        ),
        "error_frames": merged(filled, "errors"),
        "generator_loop_cpu_s": round(sum(r["cpu_seconds"] for r in filled), 3),
    }


def dashboard_figures(
    filled: list[dict[str, Any]], watched: list[dict[str, Any]], targets: dict[int, dict[int, int]]
) -> dict[str, Any]:
    """Latency from each update's send to every dashboard of its form; updates per second per
    dashboard while the respondents were sending; submissions never shown submitted."""
    boards = [b for report in watched for b in report["dashboards"]]
    shown: dict[tuple[int, int], list[tuple[float, int]]] = {}
    for report in watched:
        for board, pk, revision, at in zip(*report["shown"], report["shown_time"], strict=True):
            shown.setdefault((board, pk), []).append((at, revision))
    for states in shown.values():
        states.sort()
    form_of = {r["submission"]: r["form"] for report in filled for r in report["respondents"]}
    boards_of: dict[int, list[int]] = {}
    for board in boards:
        boards_of.setdefault(board["form"], []).append(board["index"])
    latencies, unshown = [], 0
    for report in filled:
        rows = report["updates"]
        columns = (rows["submission"], rows["revision"], rows["sent"])
        for pk, revision, sent in zip(*columns, strict=True):
            for board in boards_of.get(form_of[pk], []) if revision >= 0 else []:
                states = shown.get((board, pk), [])
                at = next((at for at, shown_revision in states if shown_revision >= revision), 0.0)
                if at:
                    latencies.append((at - sent) * 1000)
                else:
                    unshown += 1
    submitted = {
        r["submission"]
        for report in filled
        for r in report["respondents"]
        if r.get("status") == SubmissionStatus.SUBMITTED
    }
    lost = sum(
        1
        for board in boards
        for pk, revision in targets.get(board["form"], {}).items()
        if pk in submitted and board["submitted"].get(pk, -1) < revision
    )
    t0 = min((r["t0"] for r in filled), default=0.0)
    seconds = max((r["send_seconds"] for r in filled), default=0.0)
    rates = [_rates(board["updates"], t0, seconds) for board in boards]
    return {
        "dashboard_delivery_ms": measure.percentiles(latencies),
        "dashboard_updates_unshown": unshown,
        "dashboard_updates_per_s": {
            "mean": round(sum(r[0] for r in rates) / len(rates), 2) if rates else None,
            "max": max((r[0] for r in rates), default=None),
        },
        "dashboard_updates_max_in_1s": max((r[1] for r in rates), default=0),
        "lost": lost,
        "boards": boards,
    }


def _rates(updates: list[float], t0: float, seconds: float) -> tuple[float, int]:
    """Updates per second between t0 and t0 + seconds, and the most in any one second."""
    within = [at for at in updates if t0 <= at <= t0 + seconds]
    densest = max(
        (bisect.bisect_left(updates, at + 1.0) - n for n, at in enumerate(updates)), default=0
    )
    return (round(len(within) / seconds, 2) if seconds else 0.0), densest


# --- what PostgreSQL holds ---------------------------------------------------------------------
def check_database(
    setup: Setup, options: FormsOptions, boards: list[dict[str, Any]]
) -> dict[str, Any]:
    problems: list[str] = []
    rows = Submission.objects.filter(form_id__in=setup.form_ids).values_list(
        "form_id", "respondent_id", "status", "values", "errors"
    )
    stored = {(form_id, user): rest for form_id, user, *rest in rows}
    matching = 0
    for r, user in enumerate(setup.respondent_ids):
        form_id = setup.form_ids[r % options.forms]
        status, values, _ = stored.get((form_id, user), (None, None, None))
        if status == SubmissionStatus.SUBMITTED and values == setup.values[r]:
            matching += 1
        else:
            problems.append(f"respondent {r} on form {form_id}: {status} {values}")
    with_errors = sum(bool(e) for s, _, e in stored.values() if s == SubmissionStatus.SUBMITTED)
    if len(stored) != len(setup.respondent_ids):
        problems.append(f"{len(stored)} submissions for {len(setup.respondent_ids)} respondents")
    now = time.time()
    summaries = {
        f: form_stats(form_id=pk, now=now).summary() for f, pk in enumerate(setup.form_ids)
    }
    agreeing = 0
    for board in boards:
        want = {k: summaries[board["form"]][k] for k in ("starts", "completions")}
        got = {k: board["analytics"].get(k) for k in want}
        if got == want:
            agreeing += 1
        else:
            problems.append(f"dashboard {board['index']}: analytics {got}, database {want}")
    return {
        "submissions_matching": matching,
        "submitted_with_errors": with_errors,
        "dashboards_analytics_matching": agreeing,
        "problems_total": len(problems),
        "problems": problems[:MAX_PROBLEMS],
    }


# --- the scenario ------------------------------------------------------------------------------
def run_forms(target: Target, options: FormsOptions) -> dict[str, Any]:
    setup = create_forms(options)
    with FormsRun(target, options, setup) as run:
        connected = run.connect()
        time.sleep(SETTLE_SECONDS)
        filled, watched, targets = run.fill()
        stopped = run.stop()
    fill = fill_figures(filled)
    boards = dashboard_figures(filled, watched, targets)
    check = check_database(setup, options, boards.pop("boards"))
    sockets, respondents = len(setup.socket_users), options.respondents
    ok = (
        connected["established"] == stopped["open"] == sockets
        and fill["updates_acked"] == fill["updates_sent"] == fill["updates_scheduled"]
        and fill["feedback_wrong"] == 0
        and fill["feedback_checked"] == fill["updates_acked"]
        and fill["respondents_completed"] == respondents
        and not fill["error_frames"]
        and boards["lost"] == boards["dashboard_updates_unshown"] == 0
        and boards["dashboard_updates_max_in_1s"] <= DASHBOARD_LIMIT + 1
        and check["submissions_matching"] == respondents
        and check["submitted_with_errors"] == 0
        and check["dashboards_analytics_matching"] == options.forms * options.dashboards
        and not check["problems"]
    )
    results = {
        "ok": ok,
        **connected,
        "respondents": respondents,
        "dashboards": options.forms * options.dashboards,
        "updates_invalid_first": sum(1 for steps in setup.steps for step in steps if step[2]),
        **fill,
        **boards,
        # Each respondent's own forms.submission.changed events (reported, not checked: a fill
        # socket has no resume, so the layer's at-most-once would show here).
        "respondent_events": merged(watched, "respondent_events"),
        **check,
        "form_ids": [setup.form_ids[0], setup.form_ids[-1]],
        "held_to_end": stopped["open"],
        "closed_by_server": stopped["closed_by_server"],
        "other_frames": merged(watched, "other_frames"),
    }
    result = run.result("forms", asdict(options), results)
    # The fill window's units are the acked updates: its CPU per unit is per update.
    results["server_us_per_update"] = result["windows"]["fill"]["us_per_unit"]
    return result
