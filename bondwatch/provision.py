"""`bondwatch devices provision`: one broker login per registered device, confined by the ACL.

For every device of the registry (the ``devices`` table) the broker gets a login whose username is
the ``device_id`` and whose password is random; only its hash (Mosquitto's ``$7$`` PBKDF2-SHA512)
is kept, in the broker's password file. The ACL's provisioned section gives that login exactly:

- ``write`` on ``bw/v1/{site}/{its kind}/{its id}``: its telemetry, nothing else;
- ``readwrite`` on ``bw/v1/{site}/status/{its id}``: its retained status and last will.

It may read nothing else: not another device's telemetry, not alerts, not gate decisions. An edge
gateway that publishes for several devices over one connection gets one login (``--gateway
GW=DEV,DEV``) with the rights of each of those devices plus its own status topic; it is kept on
later runs until revoked. The platform's service account keeps ``readwrite bw/v1/#`` in the ACL's
fixed part, which provisioning never rewrites.

A run is idempotent: existing logins keep their passwords (``--rotate`` gives new ones), logins
of devices that left the registry are removed; a run naming ``--device``, ``--gateway`` or
``--revoke`` makes no login for a device it does not name; ``--revoke ID`` takes a login away and keeps it
away (a lost or stolen device; naming it with ``--device`` again gives it a fresh password). New
and rotated passwords are printed once, or written to ``--out DIR/ID.env`` with mode 0600, as the
environment an edge agent or device needs (``BONDWATCH_MQTT_URL`` with the credentials). Then the
broker re-reads both files (SIGHUP for the local services' broker; elsewhere the command says what
to run).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from pydantic import Field

from bondwatch.contract.topics import DEVICE_ID_RE, device_topic
from bondwatch.errors import BondWatchError
from bondwatch.services.mqtt_auth import (
    AclFile,
    hash_password,
    new_password,
    read_passwd,
    render_passwd,
    service_acl,
    verify_password,
    write_private,
)
from bondwatch.settings import CommonSettings, MqttTarget

log = logging.getLogger(__name__)

KINDS = ("gps", "temp", "rfid")


class ProvisionError(BondWatchError):
    pass


class ProvisionSettings(CommonSettings):
    # Folder holding the broker's `passwd` and `acl` (e.g. the mosquitto-auth volume); unset: the
    # broker of `bondwatch services up`, which is then also reloaded.
    mqtt_auth_dir: Path | None = None
    # The broker as devices reach it, without credentials, e.g. mqtts://broker.zone.example:8883;
    # goes into the credential snippets. Unset: the local TLS listener, or mqtt_url's host.
    mqtt_device_url: str | None = None
    # "UID:GID" for files made in mqtt_auth_dir (the broker's user, 1883 in its image); files that
    # exist keep their owner.
    mqtt_auth_owner: str | None = Field(default=None, pattern=r"^\d+:\d+$")


@dataclass(frozen=True)
class Login:
    """A broker account: a device (publishes for itself) or a gateway (for the devices it fronts)."""

    username: str
    devices: tuple[tuple[str, str], ...]  # (device_id, kind)
    gateway: bool = False

    def topics(self, site: str) -> list[tuple[str, str]]:
        """(access, topic) pairs of the ACL block."""
        found: list[tuple[str, str]] = []
        if self.gateway:
            found.append(("readwrite", device_topic(site, "status", self.username)))
        for device_id, kind in self.devices:
            found.append(("write", device_topic(site, kind, device_id)))
            found.append(("readwrite", device_topic(site, "status", device_id)))
        return found

    def acl_block(self, site: str) -> list[str]:
        if self.gateway:
            head = f"# gateway {self.username}: {' '.join(d for d, _ in self.devices)}".rstrip()
        else:
            head = f"# device {self.username} {self.devices[0][1]}"
        return [head, f"user {self.username}", *(f"topic {a} {t}" for a, t in self.topics(site)), ""]


@dataclass(frozen=True)
class Credential:
    login: Login
    password: str
    rotated: bool


@dataclass
class Plan:
    passwd: dict[str, str]
    acl: AclFile
    created: list[Credential] = field(default_factory=list)
    rotated: list[Credential] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def credentials(self) -> list[Credential]:
        return [*self.created, *self.rotated]


def parse_gateway(spec: str) -> tuple[str, list[str]]:
    """``GW=DEV,DEV`` -> (GW, [DEV, DEV])."""
    name, sep, devices = spec.partition("=")
    ids = [d.strip() for d in devices.split(",") if d.strip()]
    if not sep or not DEVICE_ID_RE.fullmatch(name.strip()) or not ids:
        raise ProvisionError(f"--gateway {spec!r}: expected GATEWAY_ID=DEVICE_ID[,DEVICE_ID...]")
    return name.strip(), ids


def _revoked(acl: AclFile) -> set[str]:
    return {line.removeprefix("# revoked ").strip() for line in acl.section if line.startswith("# revoked ")}


def plan(
    registry: dict[str, str],
    passwd: dict[str, str],
    acl: AclFile | None,
    *,
    site: str,
    service_user: str,
    service_password: str | None = None,
    devices: Iterable[str] = (),
    rotate: bool = False,
    gateways: Iterable[tuple[str, list[str]]] = (),
    revoke: Iterable[str] = (),
    make_password: Callable[[], str] = new_password,
) -> Plan:
    """What the password file and the ACL must become; pure, so every rule is testable without a broker."""
    only = set(devices)
    new_gateways = dict(gateways)
    to_revoke = set(revoke)
    for name in (*only, *new_gateways, *to_revoke):
        if name == service_user:
            raise ProvisionError(f"{name!r} is the platform's service account, not a device login")
    unknown = sorted(only - set(registry))
    if unknown:
        raise ProvisionError(f"not in the device registry: {', '.join(unknown)} (register them with PUT /devices/ID)")
    clash = sorted(set(new_gateways) & set(registry))
    if clash:
        raise ProvisionError(f"gateway ids must differ from device ids: {', '.join(clash)}")
    if (only | set(new_gateways)) & to_revoke:
        raise ProvisionError("a login cannot be provisioned and revoked in the same run")

    # With --device, --gateway or --revoke a run acts on those names (and still removes the logins of
    # devices gone from the registry); without, every registered device gets a login.
    targeted = bool(only or new_gateways or to_revoke)
    acl = acl or AclFile(service_acl(service_user), [])
    previous = set(acl.users())
    revoked = (_revoked(acl) | to_revoke) - only - set(new_gateways)
    result = Plan(passwd={}, acl=acl)

    wanted: list[Login] = []
    for device_id in sorted(registry):
        kind = registry[device_id]
        if device_id == service_user:
            result.warnings.append(f"device {device_id!r} has the service account's name: no login made for it")
            continue
        if kind not in KINDS or not DEVICE_ID_RE.fullmatch(device_id) or device_id in revoked:
            continue
        if targeted and device_id not in only and device_id not in passwd:
            continue  # a targeted run makes no login it was not asked for
        wanted.append(Login(device_id, ((device_id, kind),)))
    gateway_members = {**acl.gateways(), **new_gateways}
    for name in sorted(gateway_members):
        if name in revoked or name in registry:
            continue
        members: list[tuple[str, str]] = []
        for device_id in dict.fromkeys(gateway_members[name]):
            if device_id in registry:
                members.append((device_id, registry[device_id]))
            else:
                result.warnings.append(f"gateway {name}: {device_id!r} is not in the registry, left out")
        wanted.append(Login(name, tuple(members), gateway=True))

    targets = only | set(new_gateways)
    new_passwd: dict[str, str] = {}
    current = passwd.get(service_user)
    if service_password and (current is None or not verify_password(service_password, current)):
        current = hash_password(service_password)
    if current is not None:
        new_passwd[service_user] = current
    wanted_names = {login.username for login in wanted}
    for user, encoded in passwd.items():  # accounts made by hand stay, in their order
        if user == service_user or user in wanted_names:
            continue
        if user in previous or user in revoked:
            result.removed.append(user)
            continue
        new_passwd[user] = encoded
    for login in wanted:
        existing = passwd.get(login.username)
        if existing is None:
            password = make_password()
            new_passwd[login.username] = hash_password(password)
            result.created.append(Credential(login, password, rotated=False))
        elif rotate and (not targets or login.username in targets):
            password = make_password()
            new_passwd[login.username] = hash_password(password)
            result.rotated.append(Credential(login, password, rotated=True))
        else:
            new_passwd[login.username] = existing
            result.kept.append(login.username)
    result.removed.extend(sorted((previous - wanted_names) - set(result.removed)))

    section: list[str] = []
    for login in wanted:
        section.extend(login.acl_block(site))
    section.extend(f"# revoked {name}" for name in sorted(revoked))
    while section and not section[-1]:
        section.pop()
    result.passwd = new_passwd
    result.acl = AclFile(acl.fixed, section)
    return result


# ------------------------------------------------------------------------------------- the broker


@dataclass(frozen=True)
class BrokerAuth:
    """Where a broker's password file and ACL are, how to make it re-read them, how devices reach it."""

    passwd: Path
    acl: Path
    device_url: str
    ca_file: Path | None = None
    reload: Callable[[], bool] | None = None
    owner: tuple[int, int] | None = None
    reload_hint: str = "send the broker SIGHUP (docker compose kill -s SIGHUP mosquitto) so it re-reads them"


def _device_base_url(url: str) -> str:
    """``url`` without credentials."""
    MqttTarget.parse(url)
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def local_broker_auth(settings: ProvisionSettings) -> BrokerAuth:
    """The broker of `bondwatch services up` in this checkout."""
    from bondwatch.services.manager import LocalServices
    from bondwatch.services.settings import ServicesSettings
    from bondwatch.settings import load_settings

    services = LocalServices(load_settings(ServicesSettings))
    broker = services.mosquitto
    if settings.mqtt_device_url:
        url, ca = settings.mqtt_device_url, settings.mqtt_ca_file
    elif broker.tls_port:
        url, ca = f"mqtts://127.0.0.1:{broker.tls_port}", broker.pki.ca_cert
    else:
        url, ca = f"mqtt://127.0.0.1:{broker.port}", None
    return BrokerAuth(broker.passwd_file, broker.acl_file, _device_base_url(url), ca, broker.reload)


def broker_auth(settings: ProvisionSettings) -> BrokerAuth:
    if settings.mqtt_auth_dir is None:
        return local_broker_auth(settings)
    url = settings.mqtt_device_url or settings.mqtt_url
    folder = settings.mqtt_auth_dir
    uid, _, gid = (settings.mqtt_auth_owner or "").partition(":")
    owner = (int(uid), int(gid)) if settings.mqtt_auth_owner else None
    return BrokerAuth(folder / "passwd", folder / "acl", _device_base_url(url), settings.mqtt_ca_file, owner=owner)


def _owner(owner: tuple[int, int] | None, path: Path) -> tuple[int, int] | None:
    """The configured owner for a new file; an existing file keeps its own."""
    return None if path.exists() else owner


def read_registry(db_url: str) -> dict[str, str]:
    with psycopg.connect(db_url) as conn:
        return {str(d): str(k) for d, k in conn.execute("SELECT device_id, kind FROM devices").fetchall()}


def credential_env(credential: Credential, site: str, device_url: str, ca_file: Path | None) -> str:
    """The environment of the device's edge agent (`bondwatch edge`), with the login in the URL."""
    login = credential.login
    parts = urlsplit(device_url)
    url = urlunsplit(parts._replace(netloc=f"{login.username}:{credential.password}@{parts.netloc}"))
    what = f"gateway {login.username}" if login.gateway else f"device {login.username} ({login.devices[0][1]})"
    made = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    lines = [
        f"# MQTT login of {what} on site {site}, "
        f"{'rotated' if credential.rotated else 'made'} {made} by `bondwatch devices provision`.",
        "# Shown once: the broker keeps only a hash. Keep this file private (mode 0600).",
        *(f"# {access}: {topic}" for access, topic in login.topics(site)),
        f"BONDWATCH_SITE={site}",
        f"BONDWATCH_MQTT_URL={url}",
    ]
    if ca_file is not None and parts.scheme == "mqtts" and "ca=" not in parts.query:
        lines.append(f"BONDWATCH_MQTT_CA_FILE={ca_file}")
    return "\n".join(lines) + "\n"


def provision(
    settings: ProvisionSettings,
    broker: BrokerAuth,
    *,
    devices: Iterable[str] = (),
    rotate: bool = False,
    gateways: Iterable[str] = (),
    revoke: Iterable[str] = (),
    out: Path | None = None,
    registry: dict[str, str] | None = None,
) -> tuple[Plan, bool, bool]:
    """Apply a plan to the broker's files and reload it; returns the plan, whether files changed, whether
    the broker was reloaded."""
    target = settings.mqtt
    service_user = target.username or "bondwatch"
    result = plan(
        read_registry(settings.db_url) if registry is None else registry,
        read_passwd(broker.passwd),
        AclFile.read(broker.acl),
        site=settings.site,
        service_user=service_user,
        service_password=target.password,
        devices=devices,
        rotate=rotate,
        gateways=[parse_gateway(spec) for spec in gateways],
        revoke=revoke,
    )
    if out is not None:  # before the broker knows the new passwords, so none is ever lost
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        for credential in result.credentials:
            text = credential_env(credential, settings.site, broker.device_url, broker.ca_file)
            write_private(out / f"{credential.login.username}.env", text, owner=(os.geteuid(), os.getegid()))
    # The ACL first: a new login is usable only once the broker re-reads both, and a removed one
    # loses its password and its rights together on that same reload.
    changed = write_private(broker.acl, result.acl.render(), _owner(broker.owner, broker.acl))
    changed |= write_private(broker.passwd, render_passwd(result.passwd), _owner(broker.owner, broker.passwd))
    reloaded = changed and broker.reload is not None and broker.reload()
    return result, changed, reloaded


def run_provision(
    settings: ProvisionSettings,
    *,
    devices: list[str],
    rotate: bool,
    gateways: list[str],
    revoke: list[str],
    out: Path | None,
) -> None:
    """The command: apply, then print new credentials (to stdout or --out) and a summary (stderr)."""
    broker = broker_auth(settings)
    result, changed, reloaded = provision(
        settings, broker, devices=devices, rotate=rotate, gateways=gateways, revoke=revoke, out=out
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if out is None:
        for credential in result.credentials:
            sys.stdout.write(credential_env(credential, settings.site, broker.device_url, broker.ca_file) + "\n")
    else:
        for credential in result.credentials:
            print(f"wrote {out / (credential.login.username + '.env')}", file=sys.stderr)
    print(
        f"logins: {len(result.created)} created, {len(result.rotated)} rotated, {len(result.kept)} unchanged, "
        f"{len(result.removed)} removed" + (f" ({', '.join(result.removed)})" if result.removed else ""),
        file=sys.stderr,
    )
    if not changed:
        print("broker files unchanged", file=sys.stderr)
    elif reloaded:
        print("broker reloaded", file=sys.stderr)
    elif broker.reload is None:
        print(f"wrote {broker.passwd} and {broker.acl}: {broker.reload_hint}", file=sys.stderr)
    else:
        print("the broker is not running: it reads the new files when it starts", file=sys.stderr)
    if urlsplit(broker.device_url).scheme != "mqtts":
        print(f"warning: devices reach the broker without TLS ({broker.device_url})", file=sys.stderr)
