"""Mosquitto's password and ACL files: the hash format, the fixed and the provisioned parts.

Password file: one ``username:hash`` a line. Mosquitto 2 accepts ``$7$`` hashes,
``$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>`` (what ``mosquitto_passwd`` writes,
salt of 12 bytes, 101 iterations by default); :func:`hash_password` writes the same format, so
neither the services nor provisioning need ``mosquitto_passwd``. Device passwords are 192 random
bits, so the iteration count protects nothing that the length does not; it is kept modest because
the broker runs it on every CONNECT.

ACL file: a fixed part (the platform's service account, and whatever an operator adds by hand)
followed by a section between two marker lines that only ``bondwatch devices provision`` writes:
one block per device or gateway login. Rewriting the section leaves the fixed part alone, and the
local services rewrite the fixed part (on ``services up``) without touching the section.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PBKDF2_ITERATIONS = 1000
SALT_BYTES = 12

BEGIN = "# ---- BEGIN logins written by `bondwatch devices provision`: edit with it, not by hand ----"
END = "# ---- END logins written by `bondwatch devices provision` ----"


def service_acl(username: str) -> str:
    """The fixed part: the platform's account reads and writes the whole bw/v1 tree.

    It subscribes to every device's telemetry and publishes alerts (bw/v1/{site}/alerts/{type}) and
    gate decisions (bw/v1/{site}/gate/{gate_id}/decision). No rule here applies to any other account:
    a device gets rights only from its own block in the provisioned section.
    """
    return f"user {username}\ntopic readwrite bw/v1/#\ntopic read $SYS/#\n"


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a Mosquitto ``$7$`` (PBKDF2-SHA512) or ``$6$`` (SHA512) hash."""
    parts = encoded.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
            mine = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
        elif len(parts) == 4 and parts[1] == "6":
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            mine = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(mine, digest)


def new_password() -> str:
    """192 random bits, URL-safe (it goes into mqtt:// URLs as it is)."""
    return secrets.token_urlsafe(24)


def read_passwd(path: Path) -> dict[str, str]:
    """username -> hash, in file order; a missing file is empty."""
    if not path.exists():
        return {}
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        user, _, encoded = line.partition(":")
        entries[user] = encoded
    return entries


def render_passwd(entries: dict[str, str]) -> str:
    return "".join(f"{user}:{encoded}\n" for user, encoded in entries.items())


@dataclass(frozen=True)
class AclFile:
    """An ACL file split into its fixed part and the provisioned section."""

    fixed: str
    section: list[str]

    @classmethod
    def parse(cls, text: str) -> AclFile:
        lines = text.splitlines()
        if BEGIN not in lines:
            return cls(text if text.endswith("\n") or not text else text + "\n", [])
        start = lines.index(BEGIN)
        end = lines.index(END, start) if END in lines[start:] else len(lines)
        fixed = [*lines[:start], *lines[end + 1 :]]
        while fixed and not fixed[-1].strip():
            fixed.pop()
        return cls("\n".join(fixed) + "\n" if fixed else "", lines[start + 1 : end])

    @classmethod
    def read(cls, path: Path) -> AclFile | None:
        return cls.parse(path.read_text()) if path.exists() else None

    def render(self) -> str:
        if not self.section:
            return self.fixed
        return f"{self.fixed}\n{BEGIN}\n" + "".join(f"{line}\n" for line in self.section) + f"{END}\n"

    def users(self) -> list[str]:
        """The logins of the provisioned section."""
        return [line.split(None, 1)[1].strip() for line in self.section if line.startswith("user ")]

    def gateways(self) -> dict[str, list[str]]:
        """Gateway logins of the section and the devices each fronts (from their ``# gateway`` lines)."""
        found: dict[str, list[str]] = {}
        for line in self.section:
            if line.startswith("# gateway "):
                name, _, devices = line.removeprefix("# gateway ").partition(":")
                found[name.strip()] = devices.split()
        return found


def write_private(path: Path, text: str, owner: tuple[int, int] | None = None) -> bool:
    """Replace ``path`` atomically with mode 0600; False if it held ``text`` already.

    The owner is ``owner``, else the replaced file's owner (the broker's user must keep reading it
    after a reload), else whoever runs this.
    """
    if path.exists() and path.read_text() == text:
        return False
    if owner is None and path.exists():
        st = path.stat()
        owner = (st.st_uid, st.st_gid)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    if owner is not None and os.geteuid() == 0:
        os.chown(tmp, *owner)
    tmp.replace(path)
    return True
