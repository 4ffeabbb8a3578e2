"""The production compose file, checked with the docker-compose v2 plugin (no engine needed).

`docker compose config` resolves variables, merges anchors and validates the file against the
Compose specification, so a misspelled key, a missing secret or a bad value fails here, on the
developer's machine, instead of on the production host.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bondwatch.services.mosquitto import ACL
from bondwatch.services.runtime import compose_binary
from bondwatch.services.settings import ServicesSettings
from bondwatch.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DATASOURCE_FILE = ROOT / "dashboards" / "provisioning" / "datasources" / "timescaledb.yaml"

SECRETS = {
    "BONDWATCH_DB_ADMIN_PASSWORD": "dummy-admin-pw",
    "BONDWATCH_DB_APP_PASSWORD": "dummy-app-pw",
    "BONDWATCH_DB_READONLY_PASSWORD": "dummy-readonly-pw",
    "BONDWATCH_MQTT_PASSWORD": "dummy-mqtt-pw",
    "BONDWATCH_GRAFANA_ADMIN_PASSWORD": "dummy-grafana-pw",
}


@pytest.fixture(scope="module")
def compose() -> Path:
    binary = compose_binary(load_settings(ServicesSettings))
    assert binary.exists(), f"docker-compose plugin not found at {binary}"
    return binary


def run_config(
    compose: Path, tmp_path: Path, env: dict[str, str], compose_file: Path = COMPOSE_FILE, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`docker compose config` with exactly ``env``: no BONDWATCH_*/GF_* from the caller, no .env file."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BONDWATCH_", "GF_", "COMPOSE_"))}
    return subprocess.run(
        [
            str(compose),
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(empty_env_file),
            "-f",
            str(compose_file),
            "config",
            *extra,
        ],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def resolved(compose: Path, tmp_path: Path) -> dict[str, Any]:
    proc = run_config(compose, tmp_path, SECRETS, COMPOSE_FILE, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    model: dict[str, Any] = json.loads(proc.stdout)
    return model


def test_compose_file_is_valid(compose: Path, tmp_path: Path) -> None:
    proc = run_config(compose, tmp_path, SECRETS, COMPOSE_FILE, "-q")
    assert proc.returncode == 0, proc.stderr


def test_missing_secret_names_the_variable(compose: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in SECRETS.items() if k != "BONDWATCH_DB_ADMIN_PASSWORD"}
    proc = run_config(compose, tmp_path, env, COMPOSE_FILE, "-q")
    assert proc.returncode != 0
    assert "BONDWATCH_DB_ADMIN_PASSWORD" in proc.stderr


def test_broken_compose_file_fails(compose: Path, tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text()
    assert "    healthcheck:\n" in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("    healthcheck:\n", "    healthchek:\n", 1))
    proc = run_config(compose, tmp_path, SECRETS, broken, "-q")
    assert proc.returncode != 0
    assert "healthchek" in proc.stderr


def test_services_and_least_privilege(compose: Path, tmp_path: Path) -> None:
    services = resolved(compose, tmp_path)["services"]
    assert set(services) == {"timescaledb", "mosquitto", "grafana", "migrate", "bondwatch"}
    assert services["timescaledb"]["image"] == "timescale/timescaledb:2.19.3-pg17"
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2.0.21"
    assert services["grafana"]["image"].startswith("grafana/grafana-oss:12.")

    migrate, app = services["migrate"], services["bondwatch"]
    assert migrate["command"] == ["db", "migrate"]
    assert migrate["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert app["command"] == ["serve"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "mosquitto" in app["depends_on"]
    # Only the migration holds the schema owner's password.
    assert "dummy-admin-pw" in migrate["environment"]["BONDWATCH_DB_ADMIN_URL"]
    assert "BONDWATCH_DB_ADMIN_URL" not in app["environment"]
    assert "dummy-admin-pw" not in json.dumps(app) + json.dumps(services["grafana"])
    assert app["environment"]["BONDWATCH_SITE"] == "ordos-czb"
    assert app["environment"]["BONDWATCH_API_HOST"] == "0.0.0.0"
    assert app["environment"]["BONDWATCH_MQTT_URL"] == "mqtt://bondwatch:dummy-mqtt-pw@mosquitto:1883"
    assert [p["target"] for p in app["ports"]] == [8716]
    # The database is reachable only inside the compose network.
    assert "ports" not in services["timescaledb"]


def test_mounted_files_exist(compose: Path, tmp_path: Path) -> None:
    """`config` does not check bind-mount sources; a missing one would become an empty directory."""
    for name, service in resolved(compose, tmp_path)["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), f"{name}: {volume['source']} does not exist"


def test_grafana_mounts_provisioning(compose: Path, tmp_path: Path) -> None:
    grafana = resolved(compose, tmp_path)["services"]["grafana"]
    binds = {v["target"]: Path(v["source"]) for v in grafana["volumes"] if v["type"] == "bind"}
    assert binds["/etc/grafana/provisioning"] == ROOT / "dashboards" / "provisioning"
    assert grafana["environment"]["BONDWATCH_DB_READONLY_PASSWORD"] == "dummy-readonly-pw"

    provider = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/bondwatch.yaml").read_text())
    (entry,) = provider["providers"]
    assert entry["folder"] == "BondWatch 保税监管"
    assert binds[entry["options"]["path"]] == ROOT / "dashboards"


def test_datasource_uses_readonly_role() -> None:
    (source,) = yaml.safe_load(DATASOURCE_FILE.read_text())["datasources"]
    assert source["uid"] == "bondwatch-tsdb"
    assert source["user"] == "bondwatch_readonly"
    assert source["secureJsonData"]["password"] == "$BONDWATCH_DB_READONLY_PASSWORD"
    assert source["jsonData"]["timescaledb"] is True
    assert source["jsonData"]["postgresVersion"] == 1700
    assert source["jsonData"]["database"] == "bondwatch"


def test_broker_acl_matches_local_services() -> None:
    deployed = {
        line.strip()
        for line in (ROOT / "deploy/mosquitto/acl").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    local = {line.strip() for line in ACL.splitlines() if line.strip()}
    assert deployed == local
