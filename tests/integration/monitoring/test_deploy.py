"""deploy/: the alert rules are valid and every query there and in the dashboard uses a metric
the project exports (monitoring/metrics.py and django-prometheus), suffixes included.

promtool validates the rules too when it is installed (Debian: ``apt-get install prometheus``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import monitoring.metrics  # noqa: F401 - registers the project's metrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
# Prometheus's own series about a scrape.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan",
}  # fmt: skip
# Everything in a query that is not a metric name: strings, label matchers, grouping labels,
# ranges, Grafana variables, numbers, function names (followed by a parenthesis).
NOT_NAMES = re.compile(
    r'"(?:[^"\\]|\\.)*"|\{[^}]*\}|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)'
    r"|\[[^\]]*\]|\$\w+|\b\d+(?:\.\d+)?(?:e[+-]?\d+)?[smhdwy]?\b"
)
IDENTIFIER = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")


def exported_names() -> set[str]:
    # Multiprocess mode exports no process_*/python_* collectors: only ours and Django's.
    names = set(REGISTRY._names_to_collectors)
    return {name for name in names if name.startswith(("collab_", "django_"))}


def metric_names(expr: str) -> set[str]:
    stripped = NOT_NAMES.sub(" ", expr)
    return {name for name in IDENTIFIER.findall(stripped) if name.lower() not in PROMQL_WORDS}


def alert_rules() -> list[dict]:
    document = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(re.sub(r"label_values\((\w+),.*\)", r"\1", variable["query"]))
    return queries


def test_the_query_parser_finds_metric_names_only():
    expr = (
        'histogram_quantile(0.99, sum by (le, app) (rate(collab_x_bucket{app=~"a|b"}[5m])))'
        " / on (app) group_left sum(collab_y offset 15m) > 0.05"
    )
    assert metric_names(expr) == {"collab_x_bucket", "collab_y"}


def test_every_alert_rule_is_complete_and_uses_exported_metrics():
    known = exported_names() | PROMETHEUS_SERIES
    rules = alert_rules()
    assert len(rules) >= 10
    for rule in rules:
        assert rule["alert"] and rule["expr"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule
        assert rule["annotations"]["summary"], rule
        used = metric_names(rule["expr"])
        assert used, rule["expr"]
        assert used <= known, (rule["alert"], used - known)


def test_every_dashboard_query_uses_exported_metrics():
    known = exported_names()
    queries = dashboard_queries()
    assert len(queries) >= 15
    for expr in queries:
        used = metric_names(expr)
        assert used, expr
        assert used <= known, (expr, used - known)


def test_the_scrape_config_loads_the_rules_file():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"


# .ci/run provides promtool, so CI never skips this; elsewhere it runs when promtool is there.
@pytest.mark.skipif(
    shutil.which("promtool") is None and not os.environ.get("CI"),
    reason="promtool is not installed",
)
@pytest.mark.parametrize(("kind", "name"), [("rules", "alerts.yml"), ("config", "prometheus.yml")])
def test_promtool_accepts_the_deploy_files(kind, name):
    result = subprocess.run(
        ["promtool", "check", kind, name],
        cwd=DEPLOY,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
