"""`bondwatch demo` (what `make demo` runs): the whole platform fed by simulated devices."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.panel import Panel

from api.auth import Role, create_token
from api.settings import ApiSettings
from bondwatch.settings import load_settings

console = Console()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bondwatch serve exited with {proc.returncode}; see the log above")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the API did not answer on {url} within {timeout:.0f} s")


def run_demo() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = load_settings(ApiSettings)
    exe = str(Path(sys.argv[0]))
    serve = subprocess.Popen([exe, "serve"])
    load: subprocess.Popen[bytes] | None = None
    try:
        _wait_healthy(settings.api_url, serve)
        token = create_token(settings, Role.viewer, "demo viewer")
        console.print(
            Panel.fit(
                f"[bold]BondWatch 保税监管 demo[/] — site [cyan]{settings.site}[/]\n\n"
                f"API docs        {settings.api_url}/docs\n"
                f"Health          {settings.api_url}/api/v1/health\n"
                f"Metrics         {settings.api_url}/metrics\n"
                f"Viewer token    {token}\n"
                f"Try             curl -H 'Authorization: Bearer {token}' {settings.api_url}/api/v1/sensors\n"
                f"Counts          bondwatch stats --json\n\n"
                "24 trucks, 12 cold rooms and 3 gate readers on virtual serial lines, read by 5 edge agents.\n"
                "Ctrl-C stops everything.",
                title="where to look",
            )
        )
        load = subprocess.Popen([exe, "simulate", "site"])
        serve.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for proc in (load, serve):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
