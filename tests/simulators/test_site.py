"""The virtual site end to end: models -> serial devices on ptys -> edge agents -> broker -> ingest -> database,
and its registry accepted by the API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, create_token
from api.settings import ApiSettings
from bondwatch.db.settings import DbSettings
from bondwatch.settings import CommonSettings, load_settings
from ingest.service import IngestService
from simulators.site import VirtualSite
from tests.conftest import wait_for


def test_site_devices_reach_the_database(
    site: str, ingest: IngestService, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    virtual = VirtualSite(CommonSettings(site=site), tmp_path, seed=3, trucks=3)
    trucks = list(virtual.terminals)
    rooms = [room.device_id for room in virtual.store.rooms]
    db.execute("DELETE FROM positions WHERE device_id = ANY(%s)", (trucks,))
    db.execute("DELETE FROM temperatures WHERE device_id = ANY(%s)", (rooms,))
    virtual.start()
    try:

        def devices(table: str, ids: list[str]) -> int:
            row = db.execute(f"SELECT count(DISTINCT device_id) FROM {table} WHERE device_id = ANY(%s)", (ids,))
            return int(row.fetchone()[0])  # type: ignore[index]

        wait_for(lambda: devices("positions", trucks) == 3 and devices("temperatures", rooms) == len(rooms), timeout=40)
    finally:
        virtual.stop()
    soc = db.execute("SELECT min(soc_pct), max(soc_pct) FROM positions WHERE device_id = ANY(%s)", (trucks,))
    low, high = soc.fetchone()
    assert 0 < low <= high <= 100


def test_site_registry_is_accepted_by_the_api(test_env: dict[str, str], tmp_path: Path) -> None:
    virtual = VirtualSite(CommonSettings(), tmp_path, seed=5, trucks=4)
    token = create_token(load_settings(DbSettings), Role.admin, "site test")
    with TestClient(create_app(load_settings(ApiSettings))) as client:
        client.base_url = client.base_url.join("/api/v1")
        client.headers["Authorization"] = f"Bearer {token}"
        assert virtual.seed_registry(client) == len(virtual.registry())
        vehicles = client.get("/vehicles").json()
        assert {v["vehicle_id"] for v in vehicles} >= set(virtual.terminals)
        fences = client.get("/geofences").json()["features"]
        assert {f["properties"]["kind"] for f in fences} >= {"bonded_boundary", "corridor", "gate"}


def test_faults_parse_and_reach_the_devices(site: str, test_env: dict[str, str], tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from simulators.site import Fault

    with pytest.raises(ValueError, match="KIND:TARGET@SECONDS"):
        Fault.parse("gps_jump")
    with pytest.raises(ValueError, match="not one of"):
        Fault.parse("meteor:trk-01@5")
    virtual = VirtualSite(CommonSettings(site=site), tmp_path, seed=3, trucks=2)
    truck = next(iter(virtual.terminals))
    room = virtual.store.rooms[0].room_id
    virtual.start()
    try:
        time.sleep(1.5)
        virtual.inject(Fault.parse(f"bad_checksum:{truck}@0"), datetime.now(UTC))
        virtual.inject(Fault.parse(f"crc:{room}@0"), datetime.now(UTC))
        fleet_agent, coldstore_agent = virtual.agents[0], virtual.agents[1]
        wait_for(lambda: sum(d.rejected["bad_checksum"] for d in fleet_agent.drivers) >= 3, timeout=20)
        wait_for(lambda: sum(d.rejected["crc"] for d in coldstore_agent.drivers) >= 1, timeout=30)
        with pytest.raises(ValueError, match="does not apply"):
            virtual.inject(Fault.parse(f"compressor:{truck}@0"), datetime.now(UTC))
    finally:
        virtual.stop()
