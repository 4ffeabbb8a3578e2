"""What Grafana does to a PostgreSQL panel query before the database sees it, so a test can run the same SQL.

Grafana 12 turns a panel's ``rawSql`` into the statement it sends in two steps; this module does both, for a
given "now", time range and panel:

1. **Template variables** (frontend, ``templateSrv.replace`` with the panel's scoped variables):
   ``$__interval`` / ``$__interval_ms`` (the panel's interval, :func:`panel_interval`), ``$__from`` / ``$__to``
   (epoch ms), and the dashboard's variables in the forms ``$name``, ``${name}``, ``${name:format}`` and
   ``[[name]]``. Without a format a value is formatted by the SQL data sources' ``interpolateVariable``
   (@grafana/sql): a multi-value or include-All variable gives each value single-quoted and comma-joined
   (``'a','b'``), a single-value one the raw text with ``'`` doubled. Formats ``sqlstring`` (quoted, ``'``
   doubled), ``raw``, ``csv`` and ``singlequote`` are implemented. "All" is every option's value (or
   ``allValue``). A ``$name`` that is no variable is left alone, as Grafana does.

2. **Macros** (backend, the PostgreSQL data source's macro engine, documented at
   https://grafana.com/docs/grafana/latest/datasources/postgres/query-editor/#macros), with the data
   source's TimescaleDB option on (dashboards/provisioning/datasources/timescaledb.yaml):

   ==================================  ==============================================================
   ``$__time(c)``                      ``c AS "time"``
   ``$__timeEpoch(c)``                 ``extract(epoch from c) as "time"``
   ``$__timeFilter(c)``                ``c BETWEEN '<from>' AND '<to>'`` (RFC 3339, UTC, ns precision)
   ``$__timeFrom()``, ``$__timeTo()``  ``'<from>'``, ``'<to>'``
   ``$__timeGroup(c, '5m'[, fill])``   ``time_bucket('300s',c)`` (TimescaleDB on; else ``floor(...)``)
   ``$__timeGroupAlias(c, '5m')``      the same plus ``AS "time"``
   ``$__unixEpochFilter(c)``           ``c >= <from s> AND c <= <to s>``
   ``$__unixEpochFrom()``, ``...To()``  epoch seconds; ``...NanoFrom()``/``NanoTo()``/``NanoFilter(c)``: ns
   ``$__unixEpochGroup(c, '5m')``      ``floor(c/300)*300``; ``...GroupAlias`` adds ``AS "time"``
   ==================================  ==============================================================

   A macro is ``$name(args)`` with no ``)`` inside the arguments; arguments are split on commas and
   trimmed; ``$__timeGroup(...)`` directly followed by a comma is treated as ``$__timeGroupAlias`` (Grafana
   keeps that for dashboards from before 5.3). An unknown macro is an error, as in Grafana. The fill
   argument of ``$__timeGroup`` changes what Grafana does with the result, not the SQL.

Not reproduced: Grafana's row limit and its conversion of the result into data frames (the tests check the
columns and types a panel needs instead).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# --------------------------------------------------------------------------------------------- time


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeRange needs aware datetimes")


_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "M": "month", "y": "year"}


def _add(t: datetime, n: int, unit: str) -> datetime:
    if unit in ("s", "m", "h", "d", "w"):
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
        # Days and weeks are calendar days in the dashboard's zone (moment's add on a zoned time).
        return t + timedelta(seconds=n * seconds)
    months = n * (12 if unit == "y" else 1)
    y, m = divmod(t.month - 1 + months, 12)
    year, month = t.year + y, m + 1
    last = (datetime(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return t.replace(year=year, month=month, day=min(t.day, last))


def _round(t: datetime, unit: str, up: bool) -> datetime:
    if unit == "s":
        start = t.replace(microsecond=0)
    elif unit == "m":
        start = t.replace(second=0, microsecond=0)
    elif unit == "h":
        start = t.replace(minute=0, second=0, microsecond=0)
    elif unit == "d":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "w":  # the dashboards set weekStart: monday
        start = (t - timedelta(days=t.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "M":
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        start = t.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if not up:
        return start
    return _add(start, 1, unit) - timedelta(milliseconds=1)


def parse_time(text: str, now: datetime, tz: ZoneInfo, round_up: bool = False) -> datetime:
    """Grafana's date math (``now``, ``now-6h``, ``now/d``, ``now-7d/d``) in the dashboard's time zone."""
    if not text.startswith("now"):
        return datetime.fromisoformat(text).astimezone(UTC)
    t = now.astimezone(tz)
    rest = text[3:]
    for m in re.finditer(r"([+-])(\d+)([smhdwMy])|/([smhdwMy])", rest):
        if m.group(4):
            t = _round(t, m.group(4), round_up)
        else:
            n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
            t = _add(t, n, m.group(3))
    if re.sub(r"([+-])(\d+)([smhdwMy])|/([smhdwMy])", "", rest):
        raise ValueError(f"cannot parse Grafana time {text!r}")
    return t.astimezone(UTC)


# Grafana's rangeutil.roundInterval: an interval (ms) rounded to a "nice" one, by these upper bounds.
_NICE: tuple[tuple[float, int], ...] = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1500, 1000),
    (3500, 2000),
    (7500, 5000),
    (12500, 10000),
    (17500, 15000),
    (25000, 20000),
    (45000, 30000),
    (90000, 60000),
    (210000, 120000),
    (450000, 300000),
    (750000, 600000),
    (1050000, 900000),
    (1500000, 1200000),
    (2700000, 1800000),
    (5400000, 3600000),
    (9000000, 7200000),
    (16200000, 10800000),
    (24300000, 21600000),
    (64800000, 43200000),
    (604800000, 86400000),
    (1814400000, 604800000),
    (3628800000, 2592000000),
)


def round_interval_ms(ms: float) -> int:
    for bound, nice in _NICE:
        if ms < bound:
            return nice
    return 31536000000


def seconds_to_hms(seconds: float) -> str:
    """Grafana's rangeutil.secondsToHms: the interval as ``$__interval`` shows it (1 unit, largest first)."""
    years = math.floor(seconds / 31536000)
    if years:
        return f"{years}y"
    days = math.floor((seconds % 31536000) / 86400)
    if days:
        return f"{days}d"
    hours = math.floor(((seconds % 31536000) % 86400) / 3600)
    if hours:
        return f"{hours}h"
    minutes = math.floor((((seconds % 31536000) % 86400) % 3600) / 60)
    if minutes:
        return f"{minutes}m"
    secs = math.floor((((seconds % 31536000) % 86400) % 3600) % 60)
    if secs:
        return f"{secs}s"
    ms = math.floor(seconds * 1000)
    if ms:
        return f"{ms}ms"
    return "less than a millisecond"


def parse_interval(text: str) -> timedelta:
    """gtime.ParseInterval for the units the dashboards use (ms, s, m, h, d, w)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text.strip().strip("'\""))
    if not m:
        raise ValueError(f"error parsing interval {text}")
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(
        milliseconds=n * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}[unit]
    )


# The screen the dashboards are sized for: a 1920-pixel-wide wall screen or laptop, 24 grid columns.
SCREEN_PX = 1920


def panel_interval(panel: Mapping[str, Any], time_range: TimeRange) -> timedelta:
    """Grafana's calculateInterval: range / resolution, rounded, not below the panel's min interval.

    Resolution is the panel's maxDataPoints, else its width in pixels (gridPos.w of 24 columns of
    :data:`SCREEN_PX`).
    """
    width = panel.get("gridPos", {}).get("w", 24) * SCREEN_PX / 24
    resolution = panel.get("maxDataPoints") or width
    span_ms = (time_range.end - time_range.start).total_seconds() * 1000
    ms = round_interval_ms(span_ms / resolution)
    if panel.get("interval"):
        ms = max(ms, int(parse_interval(panel["interval"]).total_seconds() * 1000))
    return timedelta(milliseconds=ms)


def panel_range(panel: Mapping[str, Any], dashboard_range: TimeRange, now: datetime, tz: ZoneInfo) -> TimeRange:
    """A panel's relative time override (``timeFrom: "7d"``) replaces the dashboard's range (to stays now)."""
    if panel.get("timeFrom"):
        return TimeRange(parse_time(f"now-{panel['timeFrom']}", now, tz), dashboard_range.end)
    return dashboard_range


# --------------------------------------------------------------------------------------------- variables


@dataclass
class Variable:
    name: str
    values: list[str]  # the current value(s), "All" already resolved
    multi_or_all: bool


# Grafana's variableRegex: $var, [[var:fmt]], ${var.path:fmt}
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format(var: Variable, fmt: str | None) -> str:
    if fmt is None:  # the SQL data sources' interpolateVariable
        if var.multi_or_all or len(var.values) != 1:
            return ",".join(_quote(v) for v in var.values)
        return var.values[0].replace("'", "''")
    if fmt == "sqlstring":
        return ",".join(_quote(v) for v in var.values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in var.values)
    if fmt in ("raw", "csv"):
        return ",".join(var.values)
    raise ValueError(f"variable format {fmt!r} is not implemented by this module")


def interpolate(sql: str, variables: Mapping[str, Variable]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        var = variables.get(name)
        if var is None:
            return m.group(0)
        return _format(var, fmt)

    return _VARIABLE.sub(repl, sql)


def builtin_variables(time_range: TimeRange, interval: timedelta) -> dict[str, Variable]:
    ms = int(interval.total_seconds() * 1000)
    return {
        "__interval": Variable("__interval", [seconds_to_hms(ms / 1000)], False),
        "__interval_ms": Variable("__interval_ms", [str(ms)], False),
        "__from": Variable("__from", [str(int(time_range.start.timestamp() * 1000))], False),
        "__to": Variable("__to", [str(int(time_range.end.timestamp() * 1000))], False),
    }


def dashboard_variables(
    dashboard: Mapping[str, Any], options_of: Callable[[Mapping[str, Any]], list[str]]
) -> dict[str, Variable]:
    """Each variable at its saved default; ``options_of(variable)`` lists a query variable's values."""
    out: dict[str, Variable] = {}
    for v in dashboard.get("templating", {}).get("list", []):
        current = v.get("current", {}).get("value", v.get("query", ""))
        values = current if isinstance(current, list) else [current]
        if values == ["$__all"]:
            values = [v["allValue"]] if v.get("allValue") else options_of(v)
        out[v["name"]] = Variable(v["name"], [str(x) for x in values], bool(v.get("multi") or v.get("includeAll")))
    return out


# --------------------------------------------------------------------------------------------- macros


def go_rfc3339nano(t: datetime) -> str:
    """Go's time.RFC3339Nano of a UTC time: fraction without trailing zeros, 'Z'."""
    t = t.astimezone(UTC)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{t.microsecond:06d}".rstrip("0")
    return base + (f".{frac}" if frac else "") + "Z"


def _go_float(x: float) -> str:
    """Go's %v of a float64 for the values a bucket width takes (300 -> "300", 0.5 -> "0.5")."""
    return str(int(x)) if x == int(x) and abs(x) < 1e21 else repr(x)


_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")


class MacroError(ValueError):
    pass


@dataclass
class MacroEngine:
    time_range: TimeRange
    timescaledb: bool = True
    used: set[str] = field(default_factory=set)

    def expand(self, sql: str) -> str:
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name == "__timeGroup" and sql[m.end() : m.end() + 1] == ",":
                name = "__timeGroupAlias"
            args = [a.strip() for a in m.group(2).split(",")]
            self.used.add(name)
            return self.macro(name, args)

        return _MACRO.sub(repl, sql)

    def macro(self, name: str, args: Sequence[str]) -> str:
        r = self.time_range
        frm, to = go_rfc3339nano(r.start), go_rfc3339nano(r.end)

        def need_column() -> str:
            if not args or not args[0]:
                raise MacroError(f"missing time column argument for macro {name}")
            return args[0]

        def bucket_seconds() -> float:
            if len(args) < 2:
                raise MacroError(f"macro {name} needs time column and interval and optional fill value")
            return parse_interval(args[1]).total_seconds()

        if name == "__time":
            return f'{need_column()} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {need_column()}) as "time"'
        if name == "__timeFilter":
            c = need_column()
            return f"{c} BETWEEN '{frm}' AND '{to}'"
        if name == "__timeFrom":
            return f"'{frm}'"
        if name == "__timeTo":
            return f"'{to}'"
        if name == "__timeGroup":
            c, s = need_column(), bucket_seconds()
            if self.timescaledb:
                return f"time_bucket('{_go_float(s)}s',{c})"
            return f"floor(extract(epoch from {c})/{_go_float(s)})*{_go_float(s)}"
        if name == "__timeGroupAlias":
            return self.macro("__timeGroup", args) + ' AS "time"'
        if name == "__unixEpochFilter":
            c = need_column()
            return f"{c} >= {int(r.start.timestamp())} AND {c} <= {int(r.end.timestamp())}"
        if name == "__unixEpochNanoFilter":
            c = need_column()
            return f"{c} >= {_ns(r.start)} AND {c} <= {_ns(r.end)}"
        if name == "__unixEpochFrom":
            return str(int(r.start.timestamp()))
        if name == "__unixEpochTo":
            return str(int(r.end.timestamp()))
        if name == "__unixEpochNanoFrom":
            return str(_ns(r.start))
        if name == "__unixEpochNanoTo":
            return str(_ns(r.end))
        if name == "__unixEpochGroup":
            c, s = need_column(), bucket_seconds()
            return f"floor({c}/{_go_float(s)})*{_go_float(s)}"
        if name == "__unixEpochGroupAlias":
            return self.macro("__unixEpochGroup", args) + ' AS "time"'
        raise MacroError(f"Unknown macro {name}")


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def expand(sql: str, variables: Mapping[str, Variable], engine: MacroEngine) -> str:
    """Variables first (the frontend), then macros (the data source), as Grafana does."""
    return engine.expand(interpolate(sql, variables))


# --------------------------------------------------------------------------------------------- panels


@dataclass(frozen=True)
class Statement:
    refid: str
    sql: str


def panel_statements(
    board: Mapping[str, Any],
    panel: Mapping[str, Any],
    dashboard_range: TimeRange,
    now: datetime,
    tz: ZoneInfo,
    options_of: Callable[[Mapping[str, Any]], list[str]],
    engine_used: set[str] | None = None,
) -> list[list[Statement]]:
    """What Grafana sends for a panel's targets: one list per repeat of the panel (one per value of its
    ``repeat`` variable, each with that one value), variables at their saved defaults, macros expanded."""
    variables = dashboard_variables(board, options_of)
    time_range = panel_range(panel, dashboard_range, now, tz)
    interval = panel_interval(panel, time_range)
    repeats: list[dict[str, Variable]] = [variables]
    if panel.get("repeat"):
        var = variables[panel["repeat"]]
        repeats = [{**variables, var.name: Variable(var.name, [v], var.multi_or_all)} for v in var.values]
    out = []
    for scope in repeats:
        scope = {**scope, **builtin_variables(time_range, interval)}
        statements = []
        for t in panel["targets"]:
            engine = MacroEngine(time_range, timescaledb=True)
            sql = expand(t["rawSql"], scope, engine)
            if re.search(r"\$", re.sub(r"'[^']*'", "", sql)):
                raise MacroError(f"unexpanded variable or macro left in:\n{sql}")
            if engine_used is not None:
                engine_used |= engine.used
            statements.append(Statement(t["refId"], sql))
        out.append(statements)
    return out
