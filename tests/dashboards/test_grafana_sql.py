"""The Grafana expansion the query tests rely on, against Grafana's documented examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dashboards.grafana_sql import (
    MacroEngine,
    MacroError,
    TimeRange,
    Variable,
    builtin_variables,
    expand,
    go_rfc3339nano,
    interpolate,
    panel_interval,
    parse_time,
    round_interval_ms,
    seconds_to_hms,
)

# The range of Grafana's macro documentation: 2017-04-21 05:01:17 - 05:06:17 UTC.
DOC = TimeRange(datetime(2017, 4, 21, 5, 1, 17, tzinfo=UTC), datetime(2017, 4, 21, 5, 6, 17, tzinfo=UTC))
TZ = ZoneInfo("Asia/Shanghai")


def macros(sql: str, timescaledb: bool = True) -> str:
    return MacroEngine(DOC, timescaledb=timescaledb).expand(sql)


def test_time_macros_as_documented() -> None:
    assert macros("$__timeFilter(dateColumn)") == "dateColumn BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"
    assert macros("$__timeFrom()") == "'2017-04-21T05:01:17Z'"
    assert macros("$__timeTo()") == "'2017-04-21T05:06:17Z'"
    assert macros("$__time(dateColumn)") == 'dateColumn AS "time"'
    assert macros("$__timeEpoch(dateColumn)") == 'extract(epoch from dateColumn) as "time"'
    assert macros("$__unixEpochFilter(dateColumn)") == "dateColumn >= 1492750877 AND dateColumn <= 1492751177"
    assert macros("$__unixEpochFrom()") == "1492750877"
    assert macros("$__unixEpochTo()") == "1492751177"
    assert macros("$__unixEpochNanoFrom()") == "1492750877000000000"


def test_time_group_with_and_without_timescaledb() -> None:
    assert macros("$__timeGroup(dateColumn,'5m')") == "time_bucket('300s',dateColumn)"
    assert macros("$__timeGroupAlias(dateColumn, '1h')") == "time_bucket('3600s',dateColumn) AS \"time\""
    assert macros("$__timeGroup(dateColumn,'5m', 0)") == "time_bucket('300s',dateColumn)"  # fill: after the SQL
    assert macros("$__timeGroup(dateColumn,'5m')", timescaledb=False) == (
        "floor(extract(epoch from dateColumn)/300)*300"
    )
    assert macros("$__unixEpochGroupAlias(dateColumn,'5m')") == 'floor(dateColumn/300)*300 AS "time"'
    # Before Grafana 5.3, $__timeGroup followed by a comma also named the column "time"; still so.
    assert macros("SELECT $__timeGroup(ts,'1m'), avg(v)") == "SELECT time_bucket('60s',ts) AS \"time\", avg(v)"


def test_macro_errors() -> None:
    with pytest.raises(MacroError, match="Unknown macro __nope"):
        macros("$__nope(x)")
    with pytest.raises(MacroError, match="missing time column"):
        macros("$__timeFilter()")
    with pytest.raises(MacroError, match="needs time column and interval"):
        macros("$__timeGroup(ts)")


def test_nanosecond_times_keep_millis() -> None:
    t = datetime(2026, 11, 25, 4, 0, 0, 123000, tzinfo=UTC)
    assert go_rfc3339nano(t) == "2026-11-25T04:00:00.123Z"
    assert go_rfc3339nano(t.astimezone(TZ)) == "2026-11-25T04:00:00.123Z"


def test_variables_as_the_sql_data_sources_format_them() -> None:
    room = Variable("room", ["temp-cr-01", "temp-cr-02"], True)
    one = Variable("room", ["temp-cr-01"], True)
    plain = Variable("site", ["o'brien"], False)
    factor = Variable("k", ["0.6849"], False)
    assert interpolate("x IN ($room)", {"room": room}) == "x IN ('temp-cr-01','temp-cr-02')"
    assert interpolate("x IN (${room})", {"room": one}) == "x IN ('temp-cr-01')"  # multi: quoted even alone
    assert interpolate("x = '$site'", {"site": plain}) == "x = 'o''brien'"
    assert interpolate("${k:sqlstring}::float8", {"k": factor}) == "'0.6849'::float8"
    assert interpolate("[[k]] * 2", {"k": factor}) == "0.6849 * 2"
    assert interpolate("$__timeFilter(ts) AND $unknown", {"k": factor}) == "$__timeFilter(ts) AND $unknown"


def test_interval_as_grafana_computes_it() -> None:
    assert round_interval_ms(43_200) == 30_000
    assert round_interval_ms(2_600_000) == 1_800_000
    assert seconds_to_hms(3600) == "1h"
    assert seconds_to_hms(604800) == "7d"
    day = TimeRange(datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC))
    # 86 400 s over a full-width panel (1920 px) is 45 s: rounded to 1m; over 12 columns 90 s: 2m;
    # a min interval of 5m wins.
    assert panel_interval({"gridPos": {"w": 24}}, day) == timedelta(minutes=1)
    assert panel_interval({"gridPos": {"w": 12}}, day) == timedelta(minutes=2)
    assert panel_interval({"gridPos": {"w": 12}, "interval": "5m"}, day) == timedelta(minutes=5)
    assert panel_interval({"gridPos": {"w": 24}, "maxDataPoints": 24}, day) == timedelta(hours=1)
    scoped = builtin_variables(day, timedelta(minutes=5))
    engine = MacroEngine(day)
    assert expand("$__timeGroupAlias(ts, $__interval) -- $__interval_ms", scoped, engine) == (
        "time_bucket('300s',ts) AS \"time\" -- 300000"
    )


def test_relative_times_in_the_dashboard_zone() -> None:
    now = datetime(2026, 11, 25, 20, 30, tzinfo=UTC)  # 04:30 on the 26th in Shanghai
    assert parse_time("now-6h", now, TZ) == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    assert parse_time("now/d", now, TZ) == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # local midnight
    assert parse_time("now/d", now, TZ, round_up=True) == datetime(2026, 11, 26, 15, 59, 59, 999000, tzinfo=UTC)
    assert parse_time("now-1M/M", now, TZ) == datetime(2026, 9, 30, 16, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("now-6x", now, TZ)
