"""`bondwatch dashboards push` against a stand-in for Grafana's HTTP API.

Grafana itself is in no package registry this project can install from, so a small HTTP server on the
loopback plays the three endpoints the push uses, answering as Grafana's HTTP API documents them
(GET /api/folders/:uid -> 404 when missing; POST /api/folders; POST /api/dashboards/db). The test checks the
requests grafana-client really sends: the token, the folder made once, every dashboard with its uid,
``overwrite: true`` and the folder's uid.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bondwatch.cli import app
from bondwatch.grafana import DashboardPushError, push_dashboards
from tests.dashboards.support import DASHBOARDS, load_dashboards

TOKEN = "glsa_test_0123456789abcdef"


@dataclass
class FakeGrafana:
    url: str
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse_dashboards: int | None = None  # answer POST /api/dashboards/db with this status


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append((self.command, self.path, dict(self.headers), body))
            return body

        def do_GET(self) -> None:
            self._record()
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._answer(401, {"message": "Unauthorized"})
            if self.path.startswith("/api/folders/"):
                uid = self.path.rsplit("/", 1)[1]
                if uid in state.folders:
                    return self._answer(200, {"uid": uid, "title": state.folders[uid]})
                return self._answer(404, {"message": "folder not found", "status": "not-found"})
            self._answer(404, {"message": "not found"})

        def do_POST(self) -> None:
            body = self._record()
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._answer(401, {"message": "Unauthorized"})
            if self.path == "/api/folders":
                state.folders[body["uid"]] = body["title"]
                return self._answer(200, {"uid": body["uid"], "title": body["title"], "id": 7})
            if self.path == "/api/dashboards/db":
                if state.refuse_dashboards:
                    return self._answer(state.refuse_dashboards, {"message": "Dashboard not found", "status": "x"})
                uid = body["dashboard"]["uid"]
                version = state.dashboards.get(uid, {}).get("version", 0) + 1
                state.dashboards[uid] = {**body, "version": version}
                return self._answer(
                    200, {"id": 1, "uid": uid, "url": f"/d/{uid}/x", "status": "success", "version": version}
                )
            self._answer(404, {"message": "not found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_push_creates_the_folder_and_overwrites_every_dashboard(grafana: FakeGrafana) -> None:
    pushed = push_dashboards(grafana.url, TOKEN, folder_title="保税监管 test", folder_uid="bw-test")
    boards = load_dashboards()
    assert sorted(p.uid for p in pushed) == sorted(b["uid"] for b in boards.values())

    calls = [(m, p) for m, p, _, _ in grafana.requests]
    assert calls[0] == ("GET", "/api/folders/bw-test")
    assert calls[1] == ("POST", "/api/folders")
    assert calls[2:] == [("POST", "/api/dashboards/db")] * len(boards)
    assert all(h.get("Authorization") == f"Bearer {TOKEN}" for _, _, h, _ in grafana.requests)
    assert grafana.requests[1][3] == {"title": "保税监管 test", "uid": "bw-test"}
    by_uid = {b["uid"]: b for b in boards.values()}
    for _, _, _, body in grafana.requests[2:]:
        assert body["overwrite"] is True
        assert body["folderUid"] == "bw-test"
        sent = body["dashboard"]
        assert sent["id"] is None
        assert {k: v for k, v in sent.items() if k != "id"} == {k: v for k, v in by_uid[sent["uid"]].items()}

    # Again: the folder is there now, the dashboards are overwritten (a new version each).
    grafana.requests.clear()
    again = push_dashboards(grafana.url, TOKEN, folder_title="保税监管 test", folder_uid="bw-test")
    assert [(m, p) for m, p, _, _ in grafana.requests][:2] == [
        ("GET", "/api/folders/bw-test"),
        ("POST", "/api/dashboards/db"),
    ]
    assert {p.version for p in again} == {2}


def test_refusals_name_the_step(grafana: FakeGrafana, tmp_path: Path) -> None:
    with pytest.raises(DashboardPushError, match="refused folder bw: 401"):
        push_dashboards(grafana.url, "wrong-token", folder_uid="bw")
    grafana.refuse_dashboards = 412
    with pytest.raises(DashboardPushError, match=r"refused dashboard bondwatch-\S+: 412"):
        push_dashboards(grafana.url, TOKEN, folder_uid="bw")
    with pytest.raises(DashboardPushError, match="no dashboard JSON files"):
        push_dashboards(grafana.url, TOKEN, directory=tmp_path)
    with pytest.raises(DashboardPushError, match="cannot reach Grafana"):
        push_dashboards("http://127.0.0.1:9", TOKEN, timeout=2)


def test_cli_push(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(
        app, ["dashboards", "push", "--url", grafana.url, "--token", TOKEN, "--dir", str(DASHBOARDS)]
    )
    assert result.exit_code == 0, result.output
    assert grafana.folders == {"bondwatch": "BondWatch 保税监管"}
    assert sorted(grafana.dashboards) == sorted(b["uid"] for b in load_dashboards().values())
    assert "bondwatch-fleet: 车队 Fleet -> /d/bondwatch-fleet/x version 1" in result.output
