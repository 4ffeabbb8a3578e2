"""Running the rules engine: its own persistent subscription, one transaction per batch, acks after checkpoints.

The loop, on one thread:

1. read a batch from the broker (ingest's subscriber and triage: the rules judge exactly what
   ingest stores; what ingest dead-letters, the rules never see);
2. reload registry tables the database said changed (LISTEN ``bondwatch_registry``);
3. run the engine over the batch, and on the platform's clock (silence, gate windows, escalation);
4. commit the effects (alerts, events, passages) and, every ``rules_checkpoint_s``, the engine's
   state, and only then PUBACK the messages that state covers;
5. send what the commit produced (the relay), and what the API wrote (LISTEN ``bondwatch_alerts``).

A crash anywhere makes the broker deliver the unacknowledged messages again; the engine restarts
from its checkpoint and replays them, and every write is idempotent (see :mod:`rules.store`). One
engine runs per site: a second one waits on an advisory lock as a hot standby.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg

from bondwatch.contract.payloads import GpsReading, RfidReading, TempReading
from bondwatch.foreground import run_until_signalled
from ingest.errors import BrokerUnavailable
from ingest.mqtt import InboundMessage, Subscriber, Subscription
from ingest.triage import Accepted, triage
from rules import metrics
from rules.effects import Effects
from rules.engine import Engine
from rules.observation import Observation
from rules.registry import TABLES, Registry
from rules.relay import Relay
from rules.settings import RulesSettings
from rules.store import Store

log = logging.getLogger(__name__)
LOCK_SQL = "SELECT pg_try_advisory_lock(hashtext('bondwatch-rules:' || %s))"


class RulesService:
    def __init__(self, settings: RulesSettings) -> None:
        self.settings = settings
        self.subscriber = Subscriber(
            Subscription(
                mqtt=settings.mqtt,
                site=settings.site,
                client_id=settings.client_id(),
                inflight=settings.rules_inflight,
                on_connection=lambda up: metrics.CONNECTED.set(1 if up else 0),
            )
        )
        self.relay = Relay(settings)
        self.registry = Registry()
        self.engine = Engine(settings, self.registry)
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rules", daemon=True)
        self._conn: psycopg.Connection[Any] | None = None
        self._listen: psycopg.Connection[Any] | None = None
        self._pending: list[InboundMessage] = []
        self._last_checkpoint = time.monotonic()
        self._last_tick = 0.0
        self._last_reload = time.monotonic()
        self._unknown_reload = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    # ------------------------------------------------------------------ start-up
    def _connect_db(self) -> None:
        s = self.settings
        conn = psycopg.connect(s.db_url, application_name=s.client_id())
        conn.execute("SELECT set_config('TimeZone', %s, false)", (s.rules_timezone,))
        conn.commit()
        listen = psycopg.connect(s.db_url, application_name=f"{s.client_id()}-listen", autocommit=True)
        listen.execute("LISTEN bondwatch_registry")
        listen.execute("LISTEN bondwatch_alerts")
        self._conn, self._listen = conn, listen

    def _take_lock(self) -> bool:
        assert self._conn is not None
        warned = False
        while not self._stop.is_set():
            row = self._conn.execute(LOCK_SQL, (self.settings.site,)).fetchone()
            self._conn.commit()
            if row and row[0]:
                return True
            if not warned:
                log.warning("another rules engine runs for site %s; standing by", self.settings.site)
                warned = True
            self._stop.wait(2.0)
        return False

    def _boot(self) -> None:
        """Registry, checkpointed state, what ingest last heard; then start judging silence after a grace."""
        assert self._conn is not None
        self.registry.reload(self._conn, set(TABLES), self.settings.rules_crs)
        self.engine = Engine(self.settings, self.registry)
        store = Store(self._conn, self.settings.site)
        restored = self.engine.restore(store.load_states())
        for device, kind, arrived, t in store.last_heard():
            self.engine.silence.seed(device, kind, arrived, t)
        self._conn.commit()
        self.engine.silence.judging_from = time.time() + self.settings.rules_startup_grace_s
        log.info("rules engine restored %d states for site %s", restored, self.settings.site)

    def _run(self) -> None:
        try:
            self._connect_db()
            if not self._take_lock():
                return
            self._boot()
            self.relay.start()
            self.subscriber.connect()
            self.ready.set()
            log.info("rules engine %s running for site %s", self.settings.client_id(), self.settings.site)
            while not self._stop.is_set():
                self._cycle()
        except Exception:
            log.exception("rules engine stopped")
            raise
        finally:
            self.subscriber.close()
            self.relay.wait_idle(2.0)
            self.relay.stop()
            for conn in (self._conn, self._listen):
                if conn is not None:
                    conn.close()

    # ------------------------------------------------------------------ the loop
    def _cycle(self) -> None:
        s = self.settings
        try:
            batch = self.subscriber.poll(s.rules_batch_messages, 0.05)
        except BrokerUnavailable as exc:
            log.error("%s; reconnecting", exc)
            self.subscriber.reconnect(self._stop)
            return
        try:
            self._judge(batch)
        except psycopg.OperationalError as exc:
            log.error("database unavailable (%s); recovering from the last checkpoint", exc)
            self._recover()

    def _judge(self, batch: list[InboundMessage]) -> None:
        assert self._conn is not None
        s = self.settings
        started = time.perf_counter()
        relay_due = self._notifications()
        observations = self._observations(batch)
        fx = self.engine.process(observations) if observations else Effects()
        now = time.time()
        ticking = now - self._last_tick >= s.rules_tick_s
        if ticking:
            self._last_tick = now
            fx.extend(self.engine.tick(now))
        self._pending += batch
        dirty = any(h.dirty for h in self.engine.stateful)
        checkpoint = (self._pending or dirty) and time.monotonic() - self._last_checkpoint >= s.rules_checkpoint_s
        store = Store(self._conn, self.settings.site)
        escalated = store.escalate(s.rules_escalate_after_s) if ticking else 0
        if fx or checkpoint or escalated:
            if fx:
                store.apply(fx)
            if checkpoint:
                store.save_states(list(self.engine.dirty_states()))
            self._conn.commit()
            if checkpoint:
                self.subscriber.ack(self._pending)
                self._pending = []
                self._last_checkpoint = time.monotonic()
            relay_due = True
        else:
            self._conn.commit()
        if relay_due or ticking:
            self.relay.flush(self._conn)
        if batch:
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _observations(self, batch: list[InboundMessage]) -> list[Observation]:
        out: list[Observation] = []
        unknown = False
        for message in batch:
            outcome = triage(message, self.settings.site)
            if not isinstance(outcome, Accepted) or outcome.kind == "status":
                continue
            unknown = unknown or outcome.device_id not in self.registry.devices
            for item in outcome.items:
                if isinstance(item, GpsReading | TempReading | RfidReading):
                    t = item.ts.timestamp()
                    out.append(Observation(outcome.kind, outcome.device_id, item, t, message.received_at))
        if unknown and time.monotonic() - self._unknown_reload > 1.0:
            # A device registered a moment ago, before its notification was read: look once more.
            self._unknown_reload = time.monotonic()
            self._reload({"devices", "vehicles", "profiles"})
        return out

    def _notifications(self) -> bool:
        """Reload changed registry tables; True when the API wrote alert events to send."""
        assert self._listen is not None
        tables: set[str] = set()
        alerts = False
        for note in self._listen.notifies(timeout=0):
            if note.channel == "bondwatch_registry" and note.payload in TABLES:
                tables.add(note.payload)
            elif note.channel == "bondwatch_alerts":
                alerts = True
        if time.monotonic() - self._last_reload >= self.settings.rules_registry_reload_s:
            tables = set(TABLES)
        if tables:
            self._reload(tables)
        return alerts

    def _reload(self, tables: set[str]) -> None:
        assert self._conn is not None
        self.registry.reload(self._conn, tables, self.settings.rules_crs)
        if tables == set(TABLES):
            self._last_reload = time.monotonic()

    def _recover(self) -> None:
        """Start again from the last checkpoint and judge the unacknowledged messages once more."""
        pending, self._pending = self._pending, []
        delay = 0.5
        while not self._stop.wait(delay):
            try:
                for conn in (self._conn, self._listen):
                    if conn is not None:
                        conn.close()
                self._connect_db()
                if not self._take_lock():
                    return
                self._boot()
                self._judge(pending)
                return
            except psycopg.OperationalError as exc:
                log.error("database still unavailable: %s", exc)
                delay = min(delay * 2, 10.0)


def run_standalone(settings: RulesSettings) -> None:
    run_until_signalled(RulesService(settings), settings.rules_metrics_port)
