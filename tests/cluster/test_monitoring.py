"""The compose `monitoring` profile: Prometheus scrapes the API and every worker where
they serve their metrics, Grafana is provisioned with the dashboard in the repository,
and that dashboard's queries name only metrics trainq exposes."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import asgi_client
from tests.cluster.test_compose import compose
from tests.conftest import sqlite_settings
from tests.support.processes import REPO
from trainq.api.app import create_app
from trainq.services import metrics

MONITORING = REPO / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "trainq.json"
# the metric names in a PromQL expression: words that are neither functions, keywords,
# label names nor the range in brackets
PROMQL_WORDS = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
PROMQL_NOT_METRICS = frozenset(
    {"sum", "by", "rate", "increase", "histogram_quantile", "le", "status", "handler", "queue", "method", "m", "h"}
)


def mounted(service: dict[str, Any], target: str) -> Path:
    for volume in service["volumes"]:
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target:
            return REPO / source
    raise AssertionError(f"nothing is mounted at {target}")


def test_prometheus_scrapes_the_api_and_each_worker_where_they_serve_metrics() -> None:
    services = compose()["services"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    config = yaml.safe_load(mounted(services["prometheus"], "/etc/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["trainq-api"]["static_configs"][0]["targets"] == ["api:8000"]
    workers = jobs["trainq-workers"]["dns_sd_configs"][0]
    assert set(workers["names"]) == {"worker", "worker-gpu"}
    for name in ("worker", "worker-gpu"):
        environment = services[name]["environment"]
        assert int(environment["TRAINQ_WORKER_METRICS_PORT"]) == workers["port"]
        assert environment["TRAINQ_WORKER_METRICS_HOST"] == "0.0.0.0"


def test_grafana_is_provisioned_with_the_dashboard_and_the_prometheus_it_queries() -> None:
    grafana = compose()["services"]["grafana"]
    provisioning = mounted(grafana, "/etc/grafana/provisioning")
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "trainq.yml").read_text())["providers"][0]
    assert mounted(grafana, provider["options"]["path"]) == DASHBOARD.parent
    dashboard = json.loads(DASHBOARD.read_text())
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {datasource["uid"]}
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for shown in ("jobs by status", "throughput", "epoch time", "queue depth"):
        assert shown in titles


SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


@pytest.fixture
def exposed(sqlite_home: Path) -> set[str]:
    """Every sample name trainq exposes: the API's /metrics after a request, and the
    worker's metrics as services.metrics defines them."""

    async def scrape() -> str:
        app = create_app(sqlite_settings(sqlite_home))
        async with asgi_client(app) as client:
            assert (await client.get("/v1/jobs")).status_code == 200
            return (await client.get("/metrics")).text

    text = asyncio.run(scrape())
    names = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    for metric in (metrics.JOBS_FINISHED, metrics.EPOCH_SECONDS, metrics.REPORT_SECONDS, metrics.JOB_RESUMES):
        for family in metric.describe():
            names |= {family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type]}
    return names


def test_the_dashboard_queries_only_metrics_that_trainq_exposes(exposed: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expression = re.sub(r"\[[^\]]*\]|\{[^}]*\}|\"[^\"]*\"", "", target["expr"])
            queried |= {word for word in PROMQL_WORDS.findall(expression) if word not in PROMQL_NOT_METRICS}
    assert queried, "no metric found in the dashboard's queries"
    assert queried <= exposed, f"the dashboard queries metrics trainq does not expose: {sorted(queried - exposed)}"
    # and the check can fail
    assert "trainq_epochs_total" not in exposed
