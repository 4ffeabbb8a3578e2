"""Exception tree of the core package (settings, services, database)."""

from __future__ import annotations


class BondWatchError(Exception):
    """Base of every error the core package raises on purpose."""


class SettingsError(BondWatchError):
    """The effective settings are unusable (bad URL, missing secret)."""


class ServiceError(BondWatchError):
    """A local service (broker, database) could not be prepared, started or stopped."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service


class MigrationError(BondWatchError):
    """A schema migration failed; the database is left at the previous version."""

    def __init__(self, version: str, message: str) -> None:
        super().__init__(f"migration {version}: {message}")
        self.version = version
