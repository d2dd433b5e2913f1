"""The deployment files agree with each other and with the app's settings.

`docker compose config` (no daemon needed) is the authority when the compose plugin is installed; the
same structural checks also run on the YAML itself, so a machine without Docker still catches drift.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx.conf"
APP_SERVICES = ("migrate", "web1", "web2", "worker1", "worker2")
WEB, WORKERS = ("web1", "web2"), ("worker1", "worker2")
ENV = {
    "BOT_TOKEN": "123456:compose-test",
    "WEBHOOK_URL": "https://bot.example.com/tg/webhook",
    "WEBHOOK_SECRET": "compose_test_secret",
}


def compose_available() -> str | None:
    """Why `docker compose` cannot run here, or None when it can."""
    if shutil.which("docker") is None:
        return "docker client not installed"
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        return "docker compose plugin not installed"
    return None


def run_compose_config(workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Config of a copy in a clean folder: no developer .env leaks in, and `.env` really is optional."""
    shutil.copy(COMPOSE, workdir / "docker-compose.yml")
    (workdir / "deploy").mkdir(exist_ok=True)
    shutil.copy(NGINX, workdir / "deploy" / "nginx.conf")
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_CONFIG")}
    return subprocess.run(
        ["docker", "compose", "-f", "docker-compose.yml", "config", "--format", "json"],
        cwd=workdir,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(params=["docker-compose-config", "yaml"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "yaml":
        return yaml.safe_load(COMPOSE.read_text())
    reason = compose_available()
    if reason:
        pytest.skip(reason)
    result = run_compose_config(tmp_path, ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_services(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {"postgres", "redis", "proxy", *APP_SERVICES}
    assert config["services"]["postgres"]["image"] == "postgres:16"
    assert config["services"]["redis"]["image"] == "redis:7"
    assert config["services"]["proxy"]["image"].startswith("nginx:1.27")
    assert "pg_isready" in " ".join(config["services"]["postgres"]["healthcheck"]["test"])
    assert "ping" in config["services"]["redis"]["healthcheck"]["test"]


def test_roles_commands_and_modes(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["migrate"]["command"] == ["python", "-m", "bot", "migrate"]
    for name in WORKERS:
        assert services[name]["command"] == ["python", "-m", "bot", "worker"]
        assert env_of(services[name])["METRICS"] == "1"
    for name in WEB:
        env = env_of(services[name])
        assert services[name].get("command") is None, "front ends use the image's CMD: python -m bot"
        assert (env["BOT_MODE"], env["WORKERS"], env["WEB_PORT"]) == ("webhook", "0", "8080")
        assert {"WEBHOOK_URL", "WEBHOOK_SECRET"} <= set(env)


def test_every_bot_service_shares_postgres_and_redis(config: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = config["services"][name]
        env = env_of(service)
        assert env["DATABASE_URL"] == "postgresql+asyncpg://bot:bot@postgres/bot", name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name


def test_dot_env_is_passed_on_but_optional() -> None:
    """`config` merges env_file into environment and drops the key, so read the file itself; the
    docker-backed fixture runs in a folder without .env, which proves `required: false` works."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in APP_SERVICES:
        assert services[name]["env_file"] == [{"path": ".env", "required": False}], name


def test_start_order(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in (*WEB, *WORKERS):
        deps = {k: v["condition"] for k, v in services[name]["depends_on"].items()}
        assert deps == {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "migrate": "service_completed_successfully",
        }, name
    proxy_deps = {k: v["condition"] for k, v in services["proxy"]["depends_on"].items()}
    assert proxy_deps == {"web1": "service_healthy", "web2": "service_healthy"}


def test_compose_fills_in_the_webhook_settings(tmp_path: Path) -> None:
    reason = compose_available()
    if reason:
        pytest.skip(reason)
    services = json.loads(run_compose_config(tmp_path, ENV).stdout)["services"]
    for name in WEB:
        env = env_of(services[name])
        assert (env["WEBHOOK_URL"], env["WEBHOOK_SECRET"]) == (ENV["WEBHOOK_URL"], ENV["WEBHOOK_SECRET"])
    missing = run_compose_config(tmp_path, {k: v for k, v in ENV.items() if k != "WEBHOOK_SECRET"})
    assert missing.returncode != 0 and "WEBHOOK_SECRET" in missing.stderr


def nginx_upstreams() -> dict[str, list[str]]:
    text = re.sub(r"#[^\n]*", "", NGINX.read_text())
    return {
        name: re.findall(r"^\s*server\s+([^\s;]+)", body, flags=re.MULTILINE)
        for name, body in re.findall(r"upstream\s+(\S+)\s*\{([^}]*)\}", text)
    }


def test_nginx_balances_both_front_ends_on_their_port(config: dict[str, Any]) -> None:
    upstreams = nginx_upstreams()
    assert len(upstreams) == 1
    ((name, servers),) = upstreams.items()
    port = env_of(config["services"]["web1"])["WEB_PORT"]
    assert sorted(servers) == [f"web1:{port}", f"web2:{port}"]
    text = NGINX.read_text()
    assert set(re.findall(r"proxy_pass\s+http://([^;/\s]+)", text)) == {name}
    assert re.search(r"location\s+=\s+/healthz", text)
    mounts = [
        str(v) if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in config["services"]["proxy"]["volumes"]
    ]
    assert any("deploy/nginx.conf" in m and m.split(":")[1] == "/etc/nginx/nginx.conf" for m in mounts), mounts


def test_image_contains_every_package_and_runs_as_a_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted(p.removesuffix("*") for p in include)
    copied = re.findall(r"^COPY\s+(?!--from)(\S+)\s", dockerfile, flags=re.MULTILINE)
    for package in packages:
        assert package in copied, f"Dockerfile does not COPY {package}"
        assert f"!{package}/" in ignore, f".dockerignore keeps {package} out of the build context"
    assert ".[postgres,redis]" in dockerfile
    assert re.search(r"^USER\s+(?!root\b)\S+", dockerfile, flags=re.MULTILINE)
    assert 'CMD ["python", "-m", "bot"]' in dockerfile
    assert "bot.web.healthcheck" in dockerfile and (ROOT / "bot" / "web" / "healthcheck.py").exists()
    assert "*" in ignore, ".dockerignore is an allow-list (keeps .env, data/ and .git out)"
