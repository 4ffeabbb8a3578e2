"""Every shipped sample config parses and builds its drivers; bad configs are refused with the reason."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edge.config import load_config
from edge.drivers import REGISTRY, build_driver
from edge.errors import ConfigError
from edge.readings import Reading

ROOT = Path(__file__).resolve().parents[2]
DRIVER_SAMPLES = sorted((ROOT / "edge" / "drivers").glob("*/sample.toml"))


class NullSink:
    def emit(self, device_id: str, reading: Reading) -> None:
        raise AssertionError("no reading expected while building")


def test_the_agent_sample_builds_every_device() -> None:
    config = load_config(ROOT / "edge" / "sample.toml")
    drivers = [build_driver(d.id, d.driver, d.options(), NullSink()) for d in config.devices]
    assert {d.name for d in drivers} == {"rfid_serial", "llrp", "gpsd", "modbus_rtu"}


def test_every_registered_driver_has_a_folder_with_sample_and_readme() -> None:
    folders = {p.parent.name for p in DRIVER_SAMPLES}
    assert set(REGISTRY) <= folders
    for name in REGISTRY:
        assert (ROOT / "edge" / "drivers" / name / "README.md").exists()


@pytest.mark.parametrize("sample", DRIVER_SAMPLES, ids=lambda p: p.parent.name)
def test_driver_samples_build(sample: Path) -> None:
    devices = tomllib.loads(sample.read_text())["devices"]
    for device in devices:
        options = {k: v for k, v in device.items() if k not in ("id", "driver")}
        assert build_driver(device["id"], device["driver"], options, NullSink()).device_ids


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[agent]\ngateway_id='gw'\nqueue_path='q.db'\n", "devices"),
        ("[agent]\ngateway_id='gw'\nqueue_path='q.db'\n[[devices]]\nid='a'\ndriver='nope'\n", "unknown driver"),
        ("[agent]\ngateway_id='g w'\nqueue_path='q.db'\n[[devices]]\nid='a'\ndriver='gpsd'\n", "gateway_id"),
        (
            "[agent]\ngateway_id='gw'\nqueue_path='q.db'\n[[devices]]\nid='a'\ndriver='gpsd'\n"
            "[[devices]]\nid='a'\ndriver='gpsd'\n",
            "twice",
        ),
        ("[agent]\ngateway_id='gw'\nqueue_path='q.db'\n[[devices]]\nid='a'\ndriver='gpsd'\nprot=1\n", "prot"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_configs_are_refused(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason):
        config = load_config(path)
        for d in config.devices:
            build_driver(d.id, d.driver, d.options(), NullSink())
