"""`bondwatch dashboards push`: the repository's dashboards into a running Grafana, over its HTTP API.

docker-compose.yml provisions the dashboards from files (dashboards/provisioning/). A Grafana that already
runs elsewhere (a customs office's, a hosted one) gets them with this command instead: it creates the folder
if it is missing and saves every ``dashboards/*.json`` into it with ``overwrite: true``, so pushing again
replaces the previous version (Grafana keeps the old one in the dashboard's version history). It talks to
Grafana through grafana-client; the token is a Grafana service-account token with the Editor role
(Administration → Service accounts). The dashboards query the data source with uid ``bondwatch-tsdb``, which
that Grafana must have (docs/dashboards.md shows its settings).

A Grafana that provisions the same dashboards from files refuses to overwrite them (a provisioned dashboard
cannot be saved through the API); use one or the other.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from bondwatch.errors import BondWatchError

log = logging.getLogger(__name__)

# The same folder the file provisioning puts them in (dashboards/provisioning/dashboards/bondwatch.yaml).
DEFAULT_FOLDER_TITLE = "BondWatch 保税监管"
DEFAULT_FOLDER_UID = "bondwatch"
DATASOURCE_UID = "bondwatch-tsdb"


class DashboardPushError(BondWatchError):
    """Grafana refused or could not be reached; the message says which dashboard and why."""


@dataclass(frozen=True)
class Pushed:
    uid: str
    title: str
    url: str
    version: int | None


def default_dashboards_dir() -> Path:
    """dashboards/ of the checkout this package runs from."""
    return Path(__file__).resolve().parent.parent / "dashboards"


def load_dashboards(directory: Path) -> list[dict[str, Any]]:
    """Every dashboard JSON file in ``directory`` (not its provisioning/ sub-folder), sorted by file name."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise DashboardPushError(f"no dashboard JSON files in {directory}")
    boards = []
    for path in files:
        try:
            board = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DashboardPushError(f"{path}: {exc}") from exc
        if not isinstance(board, dict) or not board.get("uid") or not board.get("title"):
            raise DashboardPushError(f"{path}: not a dashboard (a JSON object with uid and title)")
        boards.append(board)
    uids = [b["uid"] for b in boards]
    if len(set(uids)) != len(uids):
        raise DashboardPushError(f"two dashboards in {directory} share a uid: {sorted(uids)}")
    return boards


def _ensure_folder(api: GrafanaApi, title: str, uid: str) -> None:
    # grafana-client's element methods carry no type annotations, hence the ignores.
    try:
        api.folder.get_folder(uid)  # type: ignore[no-untyped-call]
        return
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
    log.info("creating Grafana folder %s (%s)", title, uid)
    api.folder.create_folder(title, uid=uid)  # type: ignore[no-untyped-call]


def push_dashboards(
    url: str,
    token: str,
    *,
    folder_title: str = DEFAULT_FOLDER_TITLE,
    folder_uid: str = DEFAULT_FOLDER_UID,
    directory: Path | None = None,
    timeout: float = 15.0,
) -> list[Pushed]:
    """Create the folder when missing and save every dashboard into it, overwriting; returns what was saved."""
    boards = load_dashboards(directory or default_dashboards_dir())
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    pushed: list[Pushed] = []
    step = f"folder {folder_uid}"
    try:
        _ensure_folder(api, folder_title, folder_uid)
        for board in boards:
            step = f"dashboard {board['uid']}"
            # id is Grafana's own row id: the uid identifies the dashboard across Grafanas.
            body = {
                "dashboard": {**board, "id": None},
                "folderUid": folder_uid,
                "overwrite": True,
                "message": "bondwatch dashboards push",
            }
            answer = api.dashboard.update_dashboard(body)
            pushed.append(Pushed(board["uid"], board["title"], str(answer.get("url", "")), answer.get("version")))
            log.info("pushed %s (%s)", board["uid"], board["title"])
    except GrafanaException as exc:
        raise DashboardPushError(f"Grafana at {url} refused {step}: {exc.status_code} {exc.message}") from exc
    except OSError as exc:  # connection refused, DNS, TLS: niquests raises OSError subclasses
        raise DashboardPushError(f"cannot reach Grafana at {url} ({step}): {exc}") from exc
    return pushed
