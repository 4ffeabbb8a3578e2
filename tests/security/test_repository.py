"""No secret in the repository: no key, no environment file, no local state; compose reads them from outside."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")


def tracked() -> list[Path]:
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if proc.returncode != 0:
        pytest.skip("not a git checkout")
    return [ROOT / name for name in proc.stdout.decode().split("\0") if name]


def test_no_private_key_or_environment_file_is_tracked() -> None:
    files = tracked()
    assert files, "git lists no files"
    names = [p.relative_to(ROOT).as_posix() for p in files]
    assert not [n for n in names if n.startswith("var/") or n.endswith((".env", ".key", ".pem"))], names
    assert not [n for n in names if Path(n).name in (".env", "services.env", "passwd")]
    for path in files:
        if path.is_file() and path.stat().st_size < 2_000_000:
            assert not PRIVATE_KEY.search(path.read_bytes()), f"{path} holds a private key"


def test_gitignore_keeps_state_and_secrets_out() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/var/" in ignored
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_compose_takes_every_password_from_the_environment() -> None:
    """Each password in docker-compose.yml is a ${VARIABLE:?...} reference, never a value."""
    text = (ROOT / "docker-compose.yml").read_text()
    yaml.safe_load(text)  # well-formed
    for match in re.finditer(r"://[^:/\s]+:([^@\s]+)@", text):
        assert match.group(1).startswith("${") and ":?" in match.group(1), match.group(0)
    for match in re.finditer(r"^\s+[A-Z_]*PASSWORD[A-Z_]*:\s*(.+)$", text, re.MULTILINE):
        assert match.group(1).startswith("${") and ":?" in match.group(1), match.group(0)
