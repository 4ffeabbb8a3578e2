"""The dashboards as Grafana's file provisioning will find them (docker-compose.yml, dashboards/provisioning/)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.dashboards.support import DASHBOARDS, ROOT

CJK = re.compile(r"^[\u4e00-\u9fff]")


def _compose_grafana() -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    return service


def test_provider_reads_the_folder_compose_mounts() -> None:
    provider = yaml.safe_load((DASHBOARDS / "provisioning/dashboards/bondwatch.yaml").read_text())
    (entry,) = provider["providers"]
    mounts = {}
    for volume in _compose_grafana()["volumes"]:
        source, target, *mode = volume.split(":")
        mounts[target] = (source, mode)
    assert mounts[entry["options"]["path"]] == ("./dashboards", ["ro"])
    assert mounts["/etc/grafana/provisioning"] == ("./dashboards/provisioning", ["ro"])
    assert entry["type"] == "file" and entry["folderUid"] == "bondwatch"
    # The provider walks the folder: only the dashboards are JSON in it.
    assert sorted(p.relative_to(DASHBOARDS).as_posix() for p in DASHBOARDS.rglob("*.json")) == [
        "alerts.json",
        "coldstore.json",
        "fleet.json",
        "gates.json",
        "zero-carbon.json",
    ]


def test_every_query_uses_the_provisioned_data_source(dashboards: dict[str, dict[str, Any]]) -> None:
    (source,) = yaml.safe_load((DASHBOARDS / "provisioning/datasources/timescaledb.yaml").read_text())["datasources"]
    expected = {"type": source["type"], "uid": source["uid"]}
    for name, board in dashboards.items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert panel["datasource"] == expected, f"{name}: {panel['title']}"
                assert target["datasource"] == expected, f"{name}: {panel['title']} {target['refId']}"
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"] == expected


def test_dashboards_are_chinese_first_in_shanghai_time(dashboards: dict[str, dict[str, Any]]) -> None:
    uids = [b["uid"] for b in dashboards.values()]
    assert len(set(uids)) == len(uids) == 5
    for name, board in dashboards.items():
        assert board["timezone"] == "Asia/Shanghai", name
        assert CJK.match(board["title"]) and re.search(r"[A-Za-z]", board["title"]), board["title"]
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids), f"{name}: panel ids repeat"
        for panel in board["panels"]:
            assert CJK.match(panel["title"]) or panel["title"].startswith("$"), panel["title"]
            assert re.search(r"[A-Za-z]{3}", panel["title"]), f"no English beside: {panel['title']}"
        for variable in board["templating"]["list"]:
            assert CJK.match(variable["label"]), variable["label"]


def test_layout_fits_the_grid_without_overlaps(dashboards: dict[str, dict[str, Any]]) -> None:
    """24 columns, no two panels on the same cells (a repeated panel's clones fill its row to the right)."""
    for name, board in dashboards.items():
        taken: dict[tuple[int, int], str] = {}
        for panel in board["panels"]:
            g = panel["gridPos"]
            width = 24 if panel.get("repeat") and panel.get("repeatDirection") == "h" else g["w"]
            assert g["x"] >= 0 and g["x"] + width <= 24, f"{name}: {panel['title']} leaves the grid"
            for x in range(g["x"], g["x"] + width):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in taken, f"{name}: {panel['title']} overlaps {taken[(x, y)]}"
                    taken[(x, y)] = panel["title"]
