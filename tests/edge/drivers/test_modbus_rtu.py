"""The modbus_rtu driver against simulated sensors on a pseudo-terminal: real pyserial, real pymodbus, real bytes.

The bus is the one of sample.toml (salmon, frozen and fruit rooms on slaves 1..3); only the port
and the timing options are changed, so the documented register maps are the tested ones.
"""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from edge.config import load_config
from edge.drivers.modbus_rtu import ModbusRtuDriver, ModbusRtuOptions
from edge.errors import ConfigError
from edge.readings import Reading, Temperature
from simulators.devices.modbus_sensor import Image, ModbusSensorSimulator, image_from_values

SAMPLE = Path(__file__).resolve().parents[3] / "edge" / "drivers" / "modbus_rtu" / "sample.toml"
BUS = "rs485-test"
SALMON, FROZEN, FRUIT = "room-salmon-1", "room-frozen-1", "room-fruit-1"


class CollectingSink:
    def __init__(self) -> None:
        self.items: list[tuple[str, Reading]] = []

    def emit(self, device_id: str, reading: Reading) -> None:
        self.items.append((device_id, reading))

    def by_device(self) -> dict[str, Temperature]:
        out = {}
        for device_id, reading in self.items:
            assert isinstance(reading, Temperature)
            out[device_id] = reading
        return out

    def take(self) -> dict[str, Temperature]:
        out = self.by_device()
        assert len(out) == len(self.items), "one reading per sensor and poll"
        self.items.clear()
        return out


def sample_options() -> dict[str, Any]:
    device = tomllib.loads(SAMPLE.read_text())["devices"][0]
    return {k: v for k, v in device.items() if k not in ("id", "driver")}


def rejected(device: str, reason: str) -> float:
    return REGISTRY.get_sample_value("bondwatch_edge_rejected_total", {"device": device, "reason": reason}) or 0.0


class Bus:
    """The simulator serving sample.toml's sensors from ``values``, which a test may change between polls."""

    def __init__(self, link: Path | None = None) -> None:
        self.options = sample_options()
        maps = {s.slave: s.points for s in ModbusRtuOptions.model_validate(self.options).sensors}
        self.values: dict[int, dict[str, float | bool]] = {
            1: {"temp_c": 1.5, "rh_pct": 92.4},
            2: {"temp_c": -21.7, "battery_v": 3.61},
            3: {"temp_c": 13.2, "rh_pct": 88.5, "door_open": True},
        }

        def source(slave: int) -> Callable[[], Image]:
            return lambda: image_from_values(maps[slave], self.values[slave])

        self.sim = ModbusSensorSimulator({slave: source(slave) for slave in maps}, link=link)
        self.sink = CollectingSink()
        self.drivers: list[ModbusRtuDriver] = []

    def driver(self, **overrides: Any) -> ModbusRtuDriver:
        options = {**self.options, "port": self.sim.path, "timeout_s": 0.25, "retries": 0, "poll_s": 0.05, **overrides}
        driver = ModbusRtuDriver(BUS, options, self.sink)
        self.drivers.append(driver)
        return driver


@pytest.fixture
def bus() -> Iterator[Bus]:
    bus = Bus()
    with bus.sim:
        yield bus
        for driver in bus.drivers:
            driver.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_sample_config_is_a_valid_edge_config() -> None:
    config = load_config(SAMPLE)
    [device] = config.devices
    assert device.driver == ModbusRtuDriver.name == "modbus_rtu"
    driver = ModbusRtuDriver(device.id, device.options(), CollectingSink())
    assert driver.device_ids == [SALMON, FROZEN, FRUIT]
    # Contiguous points share a request; the block with temp_c is asked first.
    plan = {s.device_id: [(b.function, b.address, b.count) for b in s.blocks] for s in driver.sensors}
    assert plan == {SALMON: [(4, 1, 2)], FROZEN: [(3, 0, 2)], FRUIT: [(4, 0, 4), (2, 0, 1)]}


def test_config_errors_name_the_bus() -> None:
    options = sample_options()
    options["sensors"][1]["slave"] = 1
    with pytest.raises(ConfigError, match=r"(?s)rs485-x.*slave address appears twice"):
        ModbusRtuDriver("rs485-x", options, CollectingSink())
    with pytest.raises(ConfigError, match="differ"):
        ModbusRtuDriver(SALMON, sample_options(), CollectingSink())


def test_each_sensor_reading_with_its_scales(bus: Bus) -> None:
    driver = bus.driver()
    before = REGISTRY.get_sample_value("bondwatch_edge_readings_total", {"device": FROZEN, "kind": "temp"}) or 0.0
    assert driver.poll_once() == 3
    got = bus.sink.take()
    assert (got[SALMON].temp_c, got[SALMON].rh_pct, got[SALMON].door_open) == (1.5, 92.4, None)
    assert (got[FROZEN].temp_c, got[FROZEN].battery_v) == (-21.7, 3.61)
    assert (got[FRUIT].temp_c, got[FRUIT].rh_pct, got[FRUIT].door_open) == (13.2, 88.5, True)
    assert all(r.ts.tzinfo is not None for r in got.values())
    # The frozen room's -21.7 °C travels as int16 0xFF27 (65319 read unsigned).
    frozen_map = ModbusRtuOptions.model_validate(bus.options).sensors[1].points
    assert image_from_values(frozen_map, bus.values[2])[3][0] == 0xFF27
    # Readings are counted per sensor id, not under the bus.
    after = REGISTRY.get_sample_value("bondwatch_edge_readings_total", {"device": FROZEN, "kind": "temp"})
    assert after == before + 1
    assert driver.status()["rejected"] == {}

    # The registers are read live on every request (what a thermal model will drive).
    bus.values[2]["temp_c"] = -24.3
    bus.values[3]["door_open"] = False
    assert driver.poll_once() == 3
    got = bus.sink.take()
    assert (got[FROZEN].temp_c, got[FRUIT].door_open) == (-24.3, False)
    assert driver.status()["sensors"][FROZEN] == {"readings": 2, "rejected": {}}


def test_crc_error_is_counted_and_gives_no_reading(bus: Bus) -> None:
    driver = bus.driver()
    before = rejected(SALMON, "crc")
    bus.sim.corrupt_crc(slave=1)
    assert driver.poll_once() == 2
    assert set(bus.sink.take()) == {FROZEN, FRUIT}
    assert driver.status()["rejected"] == {"crc": 1}
    assert driver.status()["sensors"][SALMON]["rejected"] == {"crc": 1}
    assert rejected(SALMON, "crc") == before + 1
    assert "CRC" in (driver.last_error or "")
    # The next poll is clean again.
    assert driver.poll_once() == 3
    assert bus.sink.take()[SALMON].temp_c == 1.5


def test_timeout_is_counted_and_gives_no_reading(bus: Bus) -> None:
    driver = bus.driver()
    bus.sim.silence(slave=2)
    assert driver.poll_once() == 2
    assert set(bus.sink.take()) == {SALMON, FRUIT}
    assert driver.status()["rejected"] == {"timeout": 1}
    assert driver.poll_once() == 3


def test_exception_response_is_counted_and_not_retried(bus: Bus) -> None:
    driver = bus.driver(retries=2)
    asked = bus.sim.requests[3]
    bus.sim.exception(code=2, slave=3)
    assert driver.poll_once() == 2
    assert set(bus.sink.take()) == {SALMON, FROZEN}
    assert driver.status()["rejected"] == {"exception_response": 1}
    # One request for the temperature block, no retry, and the door block is skipped too.
    assert bus.sim.requests[3] == asked + 1
    assert "exception code 2" in (driver.last_error or "")


def test_faults_by_reason_in_one_poll(bus: Bus) -> None:
    driver = bus.driver()
    bus.sim.corrupt_crc(slave=1)
    bus.sim.silence(slave=2)
    bus.sim.exception(code=4, slave=3)
    assert driver.poll_once() == 0
    assert bus.sink.items == []
    assert driver.status()["rejected"] == {"crc": 1, "timeout": 1, "exception_response": 1}


def test_a_retry_recovers_from_a_crc_error(bus: Bus) -> None:
    driver = bus.driver(retries=1)
    bus.sim.corrupt_crc(n=1, slave=1)
    assert driver.poll_once() == 3
    assert bus.sink.take()[SALMON].temp_c == 1.5
    assert driver.status()["rejected"] == {"crc": 1}  # the refused frame is still counted


def test_a_repeated_answer_is_counted_once_and_read_once(bus: Bus) -> None:
    driver = bus.driver()
    bus.sim.repeat(slave=1)
    assert driver.poll_once() == 3
    assert bus.sink.take()[SALMON].temp_c == 1.5
    assert driver.status()["rejected"] == {"duplicate_frame": 1}
    bus.values[1]["temp_c"] = 2.0
    assert driver.poll_once() == 3  # the copy does not shift later answers
    assert bus.sink.take()[SALMON].temp_c == 2.0


def test_out_of_range_value_is_refused(bus: Bus) -> None:
    driver = bus.driver()
    bus.values[1]["temp_c"] = 90.0  # fits the register (900), not the contract (-80..85)
    bus.values[3]["rh_pct"] = 101.0
    assert driver.poll_once() == 1
    assert set(bus.sink.take()) == {FROZEN}
    assert driver.status()["rejected"] == {"out_of_range": 2}


def test_an_unanswered_slave_does_not_stop_the_others(bus: Bus) -> None:
    options = sample_options()
    options["sensors"].append(
        {"device_id": "room-ghost-1", "slave": 9, "points": [{"name": "temp_c", "function": 3, "address": 0}]}
    )
    bus.options = options
    driver = bus.driver()
    assert driver.poll_once() == 3
    assert driver.status()["sensors"]["room-ghost-1"]["rejected"] == {"timeout": 1}


def test_run_keeps_polling_and_reconnects_after_the_port_disappears(tmp_path: Path) -> None:
    bus = Bus(link=tmp_path / "ttyRS485")
    stop = threading.Event()
    with bus.sim:
        driver = bus.driver()
        thread = threading.Thread(target=driver.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for(lambda: len(bus.sink.items) >= 6)
            bus.sim.unplug()
            wait_for(lambda: driver.rejected["port_unavailable"] >= 2)
            assert rejected(BUS, "port_unavailable") >= 2  # a bus fault is labelled with the bus id
            bus.values[1]["temp_c"] = 3.5
            bus.sim.replug()
            wait_for(
                lambda: any(d == SALMON and isinstance(r, Temperature) and r.temp_c == 3.5 for d, r in bus.sink.items)
            )
        finally:
            stop.set()
            thread.join(timeout=5)
    assert not thread.is_alive()
