"""Settings of the rules engine (`bondwatch rules`, also inside `bondwatch serve`)."""

from __future__ import annotations

from pydantic import Field

from bondwatch.settings import CommonSettings


class RulesSettings(CommonSettings):
    # The broker keeps this session (and queues telemetry) while the engine is down.
    rules_client_id: str = ""
    rules_timezone: str = "Asia/Shanghai"
    # Gate passages: the reads of one gate within the window form one passage. The decision waits
    # for the window to close on the readings' clock, and for the reads to settle when a backlog
    # arrives all at once.
    rules_passage_window_s: float = Field(default=10.0, gt=0, le=300)
    rules_passage_settle_s: float = Field(default=0.3, ge=0, le=5)
    # A pass decision excuses a bonded vehicle's being outside for this long (the contract: 30 min).
    rules_exit_pass_grace_s: float = Field(default=1800.0, ge=0)
    # Position hygiene.
    rules_max_speed_kmh: float = Field(default=160.0, gt=0)
    rules_jump_min_m: float = Field(default=300.0, ge=0)
    rules_jump_reset_after: int = Field(default=3, ge=1)
    rules_future_tolerance_s: float = Field(default=120.0, ge=0)
    rules_max_fix_age_s: float = Field(default=7 * 86_400.0, gt=0)
    rules_max_hdop: float = Field(default=20.0, gt=0)
    # A straight line between two fixes that leaves the allowed area by more than this counts as an exit.
    rules_segment_outside_m: float = Field(default=100.0, gt=0)
    rules_segment_max_gap_s: float = Field(default=600.0, gt=0)
    rules_soc_hysteresis_pct: float = Field(default=5.0, ge=0)
    # Door openings this long before an excursion began are reported with it.
    rules_door_lookback_s: float = Field(default=1800.0, ge=0)
    # An unacknowledged critical alert is published again as escalated after this long (and again
    # after as long, until someone acknowledges it).
    rules_escalate_after_s: float = Field(default=300.0, gt=0)
    # Projected CRS for distances; empty: the UTM zone of the registered geofences (49N for Ordos).
    rules_crs: str = ""
    rules_checkpoint_s: float = Field(default=0.5, gt=0, le=30)
    rules_tick_s: float = Field(default=0.5, gt=0, le=10)
    # Silence is judged only this long after start, so telemetry the broker queued while the engine
    # was down is read first.
    rules_startup_grace_s: float = Field(default=5.0, ge=0)
    rules_registry_reload_s: float = Field(default=60.0, gt=0)
    rules_batch_messages: int = Field(default=2000, ge=1, le=65535)
    rules_inflight: int = Field(default=20_000, ge=1, le=65535)
    rules_metrics_port: int = Field(default=9718, ge=0, le=65535)

    def client_id(self) -> str:
        return self.rules_client_id or f"bondwatch-rules-{self.site}"
