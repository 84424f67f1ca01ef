"""docker-compose.yml: a real Compose parser accepts it, and every service's command is
something the image provides (a `trainq` subcommand, or Celery/Flower as declared deps);
it refuses to start without its secrets, and publishes nothing beyond loopback by default."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from tests.support.processes import REPO
from trainq.cli.main import app as trainq_cli

COMPOSE = REPO / "docker-compose.yml"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "REDIS_PASSWORD": "redis-secret",
    "FLOWER_BASIC_AUTH": "admin:flower-secret",
}
PROFILES = ["--profile", "gpu", "--profile", "monitoring"]


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def declared_dependencies() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [
        *project["dependencies"],
        *(r for extra in project["optional-dependencies"].values() for r in extra),
    ]
    return {
        requirement.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        for requirement in requirements
    }


def trainq_command_exists(args: list[str]) -> bool:
    """Whether `trainq ARGS...` names a command of the CLI, options included."""
    command = typer.main.get_command(trainq_cli)
    context = command.make_context("trainq", ["--help"], resilient_parsing=True)
    words = list(args)
    # a group (trainq, trainq db) has subcommands; a command has options
    while hasattr(command, "get_command") and words:
        command = command.get_command(context, words.pop(0))
        if command is None:
            return False
    if hasattr(command, "get_command"):
        return False
    options = {name for param in command.params for name in param.opts}
    return all(word.split("=")[0] in options for word in words if word.startswith("--"))


def compose_config(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with `env` as its .env file (never the checkout's own)."""
    binary = shutil.which("docker-compose")
    assert binary is not None, "docker-compose is missing (Debian package docker-compose; `make test` installs it)"
    env_file = folder / "env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    return subprocess.run(
        [binary, "--env-file", str(env_file), "-f", str(COMPOSE), *args, "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    for profile_args in ([], PROFILES):
        checked = compose_config(tmp_path, SECRETS, *profile_args)
        assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_compose_refuses_to_start_without_each_secret_in_env(tmp_path: Path, secret: str) -> None:
    for missing in ({k: v for k, v in SECRETS.items() if k != secret}, {**SECRETS, secret: ""}):
        refused = compose_config(tmp_path, missing)
        assert refused.returncode != 0 and f"set {secret}" in refused.stderr, refused.stderr


def test_published_ports_bind_loopback_and_every_client_sends_its_password(tmp_path: Path) -> None:
    resolved = compose_config(tmp_path, SECRETS, *PROFILES)
    assert resolved.returncode == 0, resolved.stderr
    services = yaml.safe_load(resolved.stdout)["services"]
    for name in ("api", "flower", "postgres", "redis"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), services[name]["ports"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-secret"
    assert services["redis"]["command"][-2:] == ["--requirepass", "redis-secret"]
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == "admin:flower-secret"
    for name in ("migrate", "api", "worker", "worker-gpu", "flower"):
        environment = services[name]["environment"]
        assert ":pg-secret@postgres:" in environment["DATABASE_URL"], name
        assert environment["REDIS_URL"] == "redis://:redis-secret@redis:6379/0", name
    exposed = compose_config(tmp_path, {**SECRETS, "TRAINQ_API_PUBLISH": "10.0.0.5:8000"})
    assert yaml.safe_load(exposed.stdout)["services"]["api"]["ports"] == ["10.0.0.5:8000:8000/tcp"]


def test_every_service_command_exists_in_the_image() -> None:
    services = compose()["services"]
    ours = {name: service for name, service in services.items() if service.get("image", "").startswith("trainq")}
    assert set(ours) == {"migrate", "api", "worker", "worker-gpu", "flower"}
    dependencies = declared_dependencies()
    for name, service in ours.items():
        command = service["command"]
        if command[0] == "trainq":
            assert trainq_command_exists(command[1:]), f"{name}: {command} is not a trainq command"
        else:
            assert command[:3] == ["celery", "-A", "trainq.worker.app"], f"{name}: {command}"
            assert {"celery", command[3]} <= dependencies, f"{name}: {command[3]} is not a declared dependency"
    assert trainq_command_exists(["worker", "--devices"]) is False  # the check can fail


def test_services_start_in_order_through_health_checks() -> None:
    services = compose()["services"]
    assert {"postgres", "redis"} <= {name for name, s in services.items() if "healthcheck" in s}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "worker-gpu"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "datasets:/var/lib/trainq/datasets" in services[name]["volumes"]
    assert services["worker-gpu"]["profiles"] == ["gpu"] and services["flower"]["profiles"] == ["monitoring"]
    assert services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert set(compose()["volumes"]) == {"postgres-data", "redis-data", "datasets", "prometheus-data", "grafana-data"}
    documented = {
        line.split("=")[0].lstrip("# ")
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("# ---")
    }
    used = set(re.findall(r"\$\{([A-Z_0-9]+)", COMPOSE.read_text()))
    assert used <= documented, used - documented
