"""Where the service binaries come from: the host itself, or a cached Debian 13 root.

A :class:`Runtime` turns a path as the service sees it (``/srv/bondwatch/pg``) into the path on
the host, and a command into the argv that runs it as the right user.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bondwatch.errors import ServiceError
from bondwatch.services.settings import ServicesSettings

log = logging.getLogger(__name__)

PG_BIN = "/usr/lib/postgresql/17/bin"
TIMESCALEDB_LIB = "/usr/lib/postgresql/17/lib/timescaledb.so"
MOSQUITTO_BIN = "/usr/sbin/mosquitto"
COMPOSE_BIN = "/usr/libexec/docker/cli-plugins/docker-compose"
# docker-compose is not a service: its `config` command validates the production compose file.
ROOT_PACKAGES = ("postgresql-17", "postgresql-17-timescaledb", "mosquitto", "mosquitto-clients", "docker-compose")
DATA_INNER = "/srv/bondwatch"


@dataclass(frozen=True)
class Runtime:
    """A root from which services run; ``root`` is ``/`` for the host itself."""

    root: Path
    data_host: Path

    @property
    def chrooted(self) -> bool:
        return self.root != Path("/")

    @property
    def data_inner(self) -> str:
        return DATA_INNER if self.chrooted else str(self.data_host)

    def host_path(self, inner: str) -> Path:
        return self.root / inner.lstrip("/") if self.chrooted else Path(inner)

    def argv(self, argv: list[str], user: str | None = None) -> list[str]:
        if self.chrooted:
            spec = [f"--userspec={user}:{user}"] if user else []
            return ["chroot", *spec, str(self.root), *argv]
        return ["runuser", "-u", user, "--", *argv] if user else argv

    def run(self, argv: list[str], user: str | None = None, service: str = "runtime") -> str:
        proc = subprocess.run(self.argv(argv, user), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ServiceError(service, f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def owner_of(self, user: str) -> tuple[int, int]:
        """uid and gid of a service account as the runtime's /etc/passwd defines it."""
        for line in self.host_path("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2]), int(fields[3])
        raise ServiceError("runtime", f"no user {user!r} in {self.host_path('/etc/passwd')}")


def host_has_packages() -> bool:
    return Path(TIMESCALEDB_LIB).exists() and Path(MOSQUITTO_BIN).exists() and Path(COMPOSE_BIN).exists()


def _cache_key(suite: str) -> str:
    return hashlib.sha256(" ".join((suite, *ROOT_PACKAGES)).encode()).hexdigest()[:10]


def cached_root(settings: ServicesSettings) -> Path:
    return settings.rootfs_cache / f"{settings.debian_suite}-{_cache_key(settings.debian_suite)}"


def ensure_cached_root(settings: ServicesSettings) -> Path:
    """Build the Debian root once per machine; concurrent callers wait on a lock."""
    target = cached_root(settings)
    if (target / ".complete").exists():
        return target
    settings.rootfs_cache.mkdir(parents=True, exist_ok=True)
    with open(settings.rootfs_cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target
        if shutil.which("debootstrap") is None:
            log.info("installing debootstrap from the Debian archive")
            subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True, stdout=subprocess.DEVNULL)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=settings.rootfs_cache))
        log.info("building a Debian %s root with %s (about a minute)", settings.debian_suite, ", ".join(ROOT_PACKAGES))
        proc = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(ROOT_PACKAGES)}",
                settings.debian_suite,
                str(work),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            tail = "\n".join(proc.stdout.splitlines()[-15:])
            raise ServiceError("rootfs", f"debootstrap failed ({proc.returncode}):\n{tail}")
        os.chmod(work, 0o755)  # mkdtemp made it 0700: the services run as unprivileged users inside
        (work / ".complete").write_text(" ".join(ROOT_PACKAGES) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
        return target


def prepare_runtime(settings: ServicesSettings) -> Runtime:
    """The runtime for this checkout: the host, or a private hard-linked copy of the cached root.

    The copy keeps each checkout's data (and its running services) apart while sharing the
    packages' files with the cache, so it costs seconds and almost no disk.
    """
    if host_has_packages():
        data = settings.state_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        return Runtime(Path("/"), data)
    own = settings.state_dir / "rootfs"
    if not (own / ".complete").exists():
        source = ensure_cached_root(settings)
        shutil.rmtree(own, ignore_errors=True)
        own.parent.mkdir(parents=True, exist_ok=True)
        log.info("linking %s into %s", source, own)
        proc = subprocess.run(["cp", "-al", str(source), str(own)], capture_output=True, check=False)
        if proc.returncode != 0:  # another filesystem: a real copy
            shutil.rmtree(own, ignore_errors=True)
            subprocess.run(["cp", "-a", str(source), str(own)], check=True)
    data = own / DATA_INNER.lstrip("/")
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o755)
    return Runtime(own, data)


def compose_binary(settings: ServicesSettings) -> Path:
    """The docker-compose plugin used to validate the production compose file (no engine needed)."""
    if Path(COMPOSE_BIN).exists():
        return Path(COMPOSE_BIN)
    return prepare_runtime(settings).host_path(COMPOSE_BIN)
