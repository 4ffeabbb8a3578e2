"""The six drills: each injects one fault into a platform under steady load and ends with the count.

Every drill follows the same script: platform up, load on, agent up, steady load, the fault, more
load after it, load off, agent drains and stops cleanly, then published against stored
(:meth:`drills.harness.Drill.finish`). The durations below are the defaults of ``python -m drills``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from drills.forwarder import TcpForwarder
from drills.harness import READINGS_PER_DEVICE_S, AgentSample, Drill, DrillFailed, DrillSkipped, mqtt_url


@dataclass(frozen=True)
class Timing:
    """Phase lengths in seconds."""

    warmup_s: float = 20.0
    recovery_s: float = 25.0
    ingest_down_s: float = 5.0
    broker_down_s: float = 10.0
    db_down_s: float = 15.0
    unreachable_s: float = 600.0
    agent_kills: int = 3
    disk_size: str = "512k"
    disk_full_hold_s: float = 20.0


@dataclass(frozen=True)
class DrillSpec:
    name: str
    title: str
    run: Callable[[Drill, Timing], None]
    # Rough length with the default timing, for the plan printed before a run.
    estimate: Callable[[Timing], float]


def _base(d: Drill) -> None:
    d.start_platform()
    d.start_load()
    d.start_agent()


class _PeakDepth:
    """The deepest the agent's queue got while a phase ran."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self, sample: AgentSample) -> None:
        if sample.depth is not None:
            self.value = max(self.value, sample.depth)


# -- 1. kill -9 of the ingest -------------------------------------------------------------------------


def ingest_kill(d: Drill, t: Timing) -> None:
    _base(d)
    d.run_for(t.warmup_s, "steady load")
    offset = len(d.log_text(d.platform))
    before = d.stored_count()
    pid = d.kill_ingest()
    d.say(f"kill -9 of ingest (pid {pid}) with {before:,} readings stored")
    if d.platform == "ingest":
        d.run_for(t.ingest_down_s, "ingest dead")
        d.start_platform()
        d.say("ingest started again")
    else:
        took = d.wait_for_ingest_subscription(offset)
        d.say(f"`bondwatch serve` restarted its ingest child within {took:.1f} s")
    d.result.details["ingest_killed_pid"] = pid
    d.run_for(t.recovery_s, "steady load")
    d.finish()


# -- 2. restart of the broker -------------------------------------------------------------------------


def broker_restart(d: Drill, t: Timing) -> None:
    _base(d)
    d.run_for(t.warmup_s, "steady load")
    peak = _PeakDepth()
    d.services.stop_broker()
    d.say(f"broker stopped ({'shared' if d.services.shared else 'private'} Mosquitto, SIGTERM)")
    try:
        d.run_for(t.broker_down_s, "broker stopped", every=peak)
    finally:
        d.services.start_broker()
    d.say(f"broker started again; the agent had queued up to {peak.value:,} readings")
    d.result.details["queue_peak"] = peak.value
    d.run_for(t.recovery_s, "steady load", every=peak)
    d.finish()
    _expect_backlog(d, peak.value, t.broker_down_s)


# -- 3. restart of the database -----------------------------------------------------------------------


def db_restart(d: Drill, t: Timing) -> None:
    _base(d)
    d.run_for(t.warmup_s, "steady load")
    before = d.stored_count() or 0
    started = time.monotonic()
    d.services.stop_database()
    where = "shared" if d.services.shared else "private"
    d.say(f"PostgreSQL stopped ({where} cluster, pg_ctl -m fast) with {before:,} readings stored")
    try:
        d.run_for(t.db_down_s, "database stopped")
    finally:
        d.services.start_database()
    d.say(f"PostgreSQL started again after {time.monotonic() - started:.1f} s")
    d.result.details["db_down_s"] = round(time.monotonic() - started, 1)
    if d.platform_exited():
        d.result.failures.append("ingest exited while the database was down")
    d.run_for(t.recovery_s, "steady load")
    d.finish()
    text = d.log_text(d.platform)
    d.result.details["ingest_db_errors_logged"] = text.count("kept unacknowledged")


# -- 4. broker unreachable from the agent -------------------------------------------------------------


def broker_unreachable(d: Drill, t: Timing) -> None:
    target = d.services.settings.mqtt
    forwarder = TcpForwarder("127.0.0.1", d.services.broker.port).start()
    d.on_close.append(forwarder.close)
    d.agent_mqtt_url = mqtt_url(target, forwarder.port)
    _base(d)
    d.run_for(t.warmup_s, "steady load")
    forwarder.cut()
    d.say(f"link cut between the agent and the broker for {t.unreachable_s:.0f} s")
    timeline: list[tuple[float, int]] = []
    every = max(10.0, t.unreachable_s / 10)
    cut_at = time.monotonic()

    def watch(sample: AgentSample) -> None:
        if sample.depth is None:
            return
        since = time.monotonic() - cut_at
        if not timeline or since - timeline[-1][0] >= every:
            timeline.append((since, sample.depth))
            d.say(f"unreachable for {since:4.0f} s: queue depth {sample.depth:,}")

    peak = _PeakDepth()

    def every_sample(sample: AgentSample) -> None:
        watch(sample)
        peak(sample)

    d.run_for(t.unreachable_s, "broker unreachable", every=every_sample)
    forwarder.restore()
    depth = peak.value
    d.say(f"link restored; queue depth {depth:,}")

    def drained_to_live() -> bool:
        metrics = d.agent_metrics()
        return metrics is not None and metrics.get("bondwatch_edge_queue_depth", depth) <= 2 * d.devices

    drain = d.wait_until("agent replaying its queue", drained_to_live, 600)
    d.say(f"backlog of {depth:,} readings replayed in {drain:.1f} s (reconnect back-off included)")
    d.result.details.update(
        unreachable_s=t.unreachable_s,
        queue_peak=depth,
        replay_s=round(drain, 1),
        timeline=[(round(s), n) for s, n in timeline],
        refused_connections=forwarder.refused,
    )
    d.run_for(t.recovery_s, "steady load")
    d.finish()
    _expect_backlog(d, depth, t.unreachable_s)


# -- 5. the edge box loses power ----------------------------------------------------------------------


def power_loss(d: Drill, t: Timing) -> None:
    _base(d)
    d.run_for(t.warmup_s, "steady load")
    wal = d.queue_path.with_name(d.queue_path.name + "-wal")
    kills = []
    for k in range(t.agent_kills):
        d.run_for(random.uniform(3, 8), "steady load")
        latency = _kill_on_write(d, wal)
        metrics_before = d.samples[-1] if d.samples else None
        kills.append(round(latency * 1000, 2))
        d.say(
            f"kill -9 of the agent #{k + 1}, {latency * 1000:.2f} ms after its queue's WAL changed"
            + (f" (queue depth {metrics_before.depth})" if metrics_before and metrics_before.depth is not None else "")
        )
        d.run_for(2, "agent dead")
        d.start_agent()
    d.result.details["kills"] = len(kills)
    d.result.details["kill_after_wal_write_ms"] = kills
    d.run_for(t.recovery_s, "steady load")
    d.finish()


def _kill_on_write(d: Drill, wal: object, window_s: float = 2.0) -> float:
    """SIGKILL the agent right after its queue's WAL changes, i.e. while a transaction is being written.

    A put under load is a write plus an fsync; the kill lands in it or just after it, at a random
    point of the agent's cycle otherwise. Returns the time between seeing the change and the kill.
    """
    path = str(wal)

    def stamp() -> tuple[int, int]:
        try:
            st = os.stat(path)
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    first = stamp()
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline:
        if stamp() != first:
            break
    seen = time.monotonic()
    os.kill(d.agent_pid(), signal.SIGKILL)
    latency = time.monotonic() - seen
    d.kill_agent()  # reaps it
    return latency


# -- 6. disk full on the edge queue -------------------------------------------------------------------


def disk_full(d: Drill, t: Timing) -> None:
    folder = d.queue_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={t.disk_size},mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        raise DrillSkipped(
            f"cannot mount a {t.disk_size} tmpfs for the queue ({(mount.stderr or mount.stdout).strip()}); "
            "this drill needs root (or CAP_SYS_ADMIN)"
        )
    d.on_close.append(lambda: _unmount(folder))
    d.say(f"queue on a {t.disk_size} tmpfs at {folder}")
    target = d.services.settings.mqtt
    forwarder = TcpForwarder("127.0.0.1", d.services.broker.port).start()
    d.on_close.append(forwarder.close)
    d.agent_mqtt_url = mqtt_url(target, forwarder.port)
    _base(d)
    d.run_for(t.warmup_s, "steady load")
    # Cut the broker so the queue has to hold everything: the disk fills up with readings.
    forwarder.cut()
    d.say("link to the broker cut: the queue grows until the disk is full")

    def refusing() -> bool:
        sample = d.sample()
        return bool(sample.refused)

    took = d.wait_until("filling the disk", refusing, 900)
    full = d.sample()
    d.say(f"disk full after {took:.0f} s: queue depth {full.depth or 0:,}, refused {full.refused or 0:,}")
    d.run_for(t.disk_full_hold_s, "disk full")
    held = d.sample()
    forwarder.restore()
    d.say(f"link restored after {t.disk_full_hold_s:.0f} s of a full disk; {held.refused or 0:,} readings refused")

    def accepting_again() -> bool:
        sample = d.sample()
        return sample.depth is not None and sample.depth <= 2 * d.devices

    d.wait_until("queue draining", accepting_again, 600)
    drained = d.sample()
    d.run_for(t.recovery_s, "steady load")
    d.finish()
    after = d.final
    if after is None:
        raise DrillFailed("no final sample of the agent's metrics")

    log = d.log_text("agent")
    named = any(str(d.queue_path) in line and "disk full" in line for line in log.splitlines())
    produced, refused, dropped = after.produced or 0, after.refused or 0, after.dropped or 0
    d.result.details.update(
        disk=t.disk_size,
        queue_peak=max(s.depth or 0 for s in d.samples),
        produced=produced,
        accepted=d.result.published,
        refused=refused,
        dropped=dropped,
        refused_while_full=held.refused,
        refused_after_link_back=refused - (held.refused or 0),
        error_names_file=named,
    )
    if not refused:
        d.result.failures.append("the disk never filled: no reading was refused")
    if not named:
        d.result.failures.append("the agent's log has no disk-full error naming the queue file")
    if dropped:
        d.result.failures.append(f"{dropped} queued readings dropped because of the disk (policy: refuse, keep)")
    if produced != d.result.published + refused:
        d.result.failures.append(
            f"the drivers produced {produced:,} readings: {d.result.published:,} accepted + {refused:,} refused "
            "does not add up"
        )
    if (after.refused or 0) > (drained.refused or 0):
        d.result.failures.append("readings still refused after the queue had drained and had room again")
    if (after.produced or 0) <= (drained.produced or 0):
        d.result.failures.append("no readings accepted after the queue had room again")


def _unmount(folder: object) -> None:
    if subprocess.run(["umount", str(folder)], capture_output=True, check=False).returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def _expect_backlog(d: Drill, peak: int, outage_s: float) -> None:
    # The agent queued what the terminals sent while the broker was away: at least half of it, given
    # reconnect timing and the queue's own replay right after the link comes back.
    expected = d.devices * READINGS_PER_DEVICE_S * outage_s * 0.5
    if peak < expected:
        d.result.failures.append(f"queue peaked at {peak:,} readings during the outage, expected >= {expected:,.0f}")


DRILLS: dict[str, DrillSpec] = {
    spec.name: spec
    for spec in (
        DrillSpec("ingest-kill", "kill -9 of the ingest mid-load, restarted", ingest_kill,
                  lambda t: t.warmup_s + t.ingest_down_s + t.recovery_s + 20),
        DrillSpec("broker-restart", "restart of the broker", broker_restart,
                  lambda t: t.warmup_s + t.broker_down_s + t.recovery_s + 25),
        DrillSpec("db-restart", "restart of the database", db_restart,
                  lambda t: t.warmup_s + t.db_down_s + t.recovery_s + 25),
        DrillSpec("broker-unreachable", "broker unreachable from the edge agent", broker_unreachable,
                  lambda t: t.warmup_s + t.unreachable_s + t.recovery_s + 60),
        DrillSpec("power-loss", "edge box loses power (kill -9 of the agent mid-write)", power_loss,
                  lambda t: t.warmup_s + t.agent_kills * 8 + t.recovery_s + 20),
        DrillSpec("disk-full", "disk full on the edge queue", disk_full,
                  lambda t: t.warmup_s + 60 + t.disk_full_hold_s + t.recovery_s + 40),
    )
}  # fmt: skip


__all__ = ["DRILLS", "DrillFailed", "DrillSkipped", "DrillSpec", "Timing"]
