"""Local services for development, tests and demos: Mosquitto 2 and PostgreSQL 17 + TimescaleDB.

Debian 12 ships neither TimescaleDB nor Mosquitto 2.0.21, so on such a host the services run from a
cached Debian 13 root (debootstrap) through ``chroot``; on a host that already has the Debian 13
packages they run directly. Either way they listen on loopback only, on ports that do not clash with
a system PostgreSQL (5432) or broker (1883), and keep their data under the git-ignored state folder.
"""
