"""PostgreSQL 17 with TimescaleDB, on loopback, data under the runtime's data folder."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import psycopg

from bondwatch.errors import ServiceError
from bondwatch.services.runtime import PG_BIN, Runtime
from bondwatch.services.secrets import DB_ADMIN, DB_NAME, LocalSecrets
from bondwatch.services.settings import ServicesSettings

log = logging.getLogger(__name__)
NAME = "postgresql"

# Sized for a 2-core, few-GiB gateway or laptop; durability stays on (synchronous_commit) because
# ingest acknowledges to the broker only after commit.
SERVER_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 100
shared_buffers = 256MB
work_mem = 16MB
maintenance_work_mem = 128MB
wal_compression = on
max_wal_size = 2GB
checkpoint_timeout = 10min
timezone = 'UTC'
log_timezone = 'UTC'
log_min_duration_statement = 2000
"""


class Postgres:
    def __init__(self, runtime: Runtime, settings: ServicesSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.inner = f"{runtime.data_inner}/pg"
        self.host_dir = runtime.host_path(self.inner)

    @property
    def log_file(self) -> Path:
        return self.runtime.data_host / "postgresql.log"

    def _pg(self, tool: str, *args: str) -> str:
        return self.runtime.run([f"{PG_BIN}/{tool}", *args], user="postgres", service=NAME)

    def pid(self) -> int | None:
        pid_file = self.host_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        pid = int(pid_file.read_text().split("\n", 1)[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def init(self, secrets: LocalSecrets) -> None:
        if (self.host_dir / "PG_VERSION").exists():
            return
        uid, gid = self.runtime.owner_of("postgres")
        self.host_dir.mkdir(parents=True, exist_ok=True)
        os.chown(self.host_dir, uid, gid)
        os.chmod(self.host_dir, 0o700)
        pwfile = self.runtime.data_host / ".pgpass-init"
        pwfile.write_text(secrets.db_admin_password + "\n")
        os.chown(pwfile, uid, gid)
        os.chmod(pwfile, 0o600)
        try:
            log.info("initialising a PostgreSQL cluster in %s", self.host_dir)
            self._pg(
                "initdb",
                "-D",
                self.inner,
                "-U",
                DB_ADMIN,
                f"--pwfile={self.runtime.data_inner}/.pgpass-init",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.host_dir / "postgresql.conf", "a") as conf:
            conf.write(SERVER_CONF.format(port=self.settings.pg_port))

    def start(self, secrets: LocalSecrets) -> None:
        self.init(secrets)
        if self.pid() is None:
            uid, gid = self.runtime.owner_of("postgres")
            self.log_file.touch()
            os.chown(self.log_file, uid, gid)
            log.info("starting PostgreSQL on 127.0.0.1:%d", self.settings.pg_port)
            try:
                self._pg("pg_ctl", "-D", self.inner, "-l", f"{self.runtime.data_inner}/postgresql.log",
                         "-w", "-t", "60", "start")  # fmt: skip
            except ServiceError as exc:  # the reason is in the server's log, not in pg_ctl's output
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-5:])
                raise ServiceError(NAME, f"{exc}\n{self.log_file}:\n{tail}") from None
        self._ensure_database(secrets)

    def _ensure_database(self, secrets: LocalSecrets) -> None:
        dsn = (
            f"host=127.0.0.1 port={self.settings.pg_port} user={DB_ADMIN} "
            f"password={secrets.db_admin_password} dbname=postgres"
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
                        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ServiceError(NAME, f"not accepting connections: {exc}") from exc
                time.sleep(0.3)

    def stop(self) -> None:
        if self.pid() is not None:
            log.info("stopping PostgreSQL")
            self._pg("pg_ctl", "-D", self.inner, "-m", "fast", "-w", "-t", "60", "stop")
