"""The rules of provisioning, without a broker: hashes, ACL blocks, what is kept, made, rotated, removed."""

from __future__ import annotations

import os

import pytest

from bondwatch.provision import Login, ProvisionError, credential_env, parse_gateway, plan
from bondwatch.services.manager import LocalServices
from bondwatch.services.mqtt_auth import BEGIN, END, AclFile, hash_password, service_acl, verify_password

SITE = "ordos-czb"
REGISTRY = {"truck-01": "gps", "room-1": "temp", "rdr-n1": "rfid"}


def _blocks(acl: AclFile) -> list[list[str]]:
    """The provisioned section's ``user`` blocks, comments left out."""
    blocks: list[list[str]] = []
    for line in acl.section:
        if line.startswith("user "):
            blocks.append([line])
        elif line.startswith("topic "):
            blocks[-1].append(line)
    return blocks


def first_run() -> tuple[dict[str, str], AclFile]:
    result = plan(REGISTRY, {"bondwatch": hash_password("svc")}, None, site=SITE, service_user="bondwatch")
    return result.passwd, result.acl


def test_hash_format_is_mosquittos() -> None:
    encoded = hash_password("secret", salt=b"\x00" * 12, iterations=101)
    assert encoded.startswith("$7$101$AAAAAAAAAAAAAAAA$")
    assert verify_password("secret", encoded) and not verify_password("Secret", encoded)
    assert not verify_password("secret", "$7$garbage") and not verify_password("secret", "plain")


def test_mosquitto_passwd_and_we_agree(services: LocalServices) -> None:
    """A hash made by the broker's own mosquitto_passwd verifies here (the broker accepting ours is
    shown by every login in test_broker_auth)."""
    inner = f"{services.runtime.data_inner}/test-passwd-{os.getpid()}"
    host = services.runtime.host_path(inner)
    try:
        services.runtime.run(["mosquitto_passwd", "-c", "-b", inner, "dev-1", "s3cret"])
        user, _, encoded = host.read_text().strip().partition(":")
        assert user == "dev-1" and encoded.startswith("$7$")
        assert verify_password("s3cret", encoded) and not verify_password("s3cret!", encoded)
    finally:
        host.unlink(missing_ok=True)


def test_every_device_gets_a_login_confined_to_its_topics() -> None:
    result = plan(REGISTRY, {}, None, site=SITE, service_user="bondwatch", service_password="svc")
    assert sorted(c.login.username for c in result.created) == sorted(REGISTRY)
    assert set(result.passwd) == {"bondwatch", *REGISTRY} and next(iter(result.passwd)) == "bondwatch"
    assert verify_password("svc", result.passwd["bondwatch"])
    text = result.acl.render()
    assert text.startswith(service_acl("bondwatch")) and "pattern" not in text
    blocks = {b[0].removeprefix("user "): b[1:] for b in _blocks(result.acl)}
    assert blocks == {
        "truck-01": ["topic write bw/v1/ordos-czb/gps/truck-01", "topic readwrite bw/v1/ordos-czb/status/truck-01"],
        "room-1": ["topic write bw/v1/ordos-czb/temp/room-1", "topic readwrite bw/v1/ordos-czb/status/room-1"],
        "rdr-n1": ["topic write bw/v1/ordos-czb/rfid/rdr-n1", "topic readwrite bw/v1/ordos-czb/status/rdr-n1"],
    }
    for credential in result.created:
        assert verify_password(credential.password, result.passwd[credential.login.username])


def test_second_run_keeps_everything() -> None:
    passwd, acl = first_run()
    again = plan(REGISTRY, passwd, AclFile.parse(acl.render()), site=SITE, service_user="bondwatch")
    assert not again.credentials and not again.removed
    assert sorted(again.kept) == sorted(REGISTRY)
    assert again.passwd == passwd and again.acl.render() == acl.render()


def test_rotate_only_the_named_device() -> None:
    passwd, acl = first_run()
    result = plan(REGISTRY, passwd, acl, site=SITE, service_user="bondwatch", devices=["room-1"], rotate=True)
    assert [c.login.username for c in result.rotated] == ["room-1"]
    assert result.passwd["room-1"] != passwd["room-1"]
    assert {u: h for u, h in result.passwd.items() if u != "room-1"} == {
        u: h for u, h in passwd.items() if u != "room-1"
    }
    everything = plan(REGISTRY, passwd, acl, site=SITE, service_user="bondwatch", rotate=True)
    assert sorted(c.login.username for c in everything.rotated) == sorted(REGISTRY)


def test_only_the_named_devices_are_added() -> None:
    result = plan(REGISTRY, {}, None, site=SITE, service_user="bondwatch", devices=["room-1"])
    assert [c.login.username for c in result.created] == ["room-1"]
    # Later, another device is named: the first keeps its login.
    later = plan(REGISTRY, result.passwd, result.acl, site=SITE, service_user="bondwatch", devices=["rdr-n1"])
    assert [c.login.username for c in later.created] == ["rdr-n1"] and later.kept == ["room-1"]


def test_a_targeted_run_makes_no_other_login() -> None:
    """Revoking one device or adding a gateway must not mint (and print) logins for the whole registry."""
    revoked = plan(REGISTRY, {}, None, site=SITE, service_user="bondwatch", revoke=["room-1"])
    assert not revoked.created and not revoked.passwd
    gateway = plan(REGISTRY, {}, None, site=SITE, service_user="bondwatch", gateways=[("gw-1", ["rdr-n1"])])
    assert [c.login.username for c in gateway.created] == ["gw-1"] and set(gateway.passwd) == {"gw-1"}


def test_devices_leaving_the_registry_lose_their_login() -> None:
    passwd, acl = first_run()
    registry = {k: v for k, v in REGISTRY.items() if k != "room-1"}
    result = plan(registry, passwd, acl, site=SITE, service_user="bondwatch")
    assert result.removed == ["room-1"]
    assert "room-1" not in result.passwd and "room-1" not in result.acl.render()


def test_accounts_made_by_hand_are_kept_and_the_fixed_part_too() -> None:
    fixed = service_acl("bondwatch") + "\nuser monitor\ntopic read $SYS/#\n"
    passwd = {"bondwatch": hash_password("svc"), "monitor": hash_password("m")}
    result = plan(REGISTRY, passwd, AclFile.parse(fixed), site=SITE, service_user="bondwatch")
    assert result.passwd["monitor"] == passwd["monitor"]
    assert result.acl.fixed == fixed
    # A device login made by hand before provisioning existed is adopted with its password.
    adopted = plan(REGISTRY, {**passwd, "truck-01": hash_password("old")}, None, site=SITE, service_user="bondwatch")
    assert "truck-01" in adopted.kept and verify_password("old", adopted.passwd["truck-01"])


def test_revoked_stays_revoked_until_named() -> None:
    passwd, acl = first_run()
    revoked = plan(REGISTRY, passwd, acl, site=SITE, service_user="bondwatch", revoke=["truck-01"])
    assert "truck-01" in revoked.removed and "truck-01" not in revoked.passwd
    assert "# revoked truck-01" in revoked.acl.render()
    again = plan(REGISTRY, revoked.passwd, AclFile.parse(revoked.acl.render()), site=SITE, service_user="bondwatch")
    assert "truck-01" not in again.passwd and not again.credentials
    back = plan(REGISTRY, again.passwd, again.acl, site=SITE, service_user="bondwatch", devices=["truck-01"])
    assert [c.login.username for c in back.created] == ["truck-01"]
    assert "# revoked" not in back.acl.render()


def test_gateways() -> None:
    passwd, acl = first_run()
    result = plan(
        REGISTRY,
        passwd,
        acl,
        site=SITE,
        service_user="bondwatch",
        gateways=[parse_gateway("gw-n1=rdr-n1,room-1,ghost")],
    )
    (created,) = result.created
    assert created.login == Login("gw-n1", (("rdr-n1", "rfid"), ("room-1", "temp")), gateway=True)
    assert any("ghost" in w for w in result.warnings)
    text = result.acl.render()
    assert "# gateway gw-n1: rdr-n1 room-1" in text
    assert "topic readwrite bw/v1/ordos-czb/status/gw-n1" in text
    # Kept by later runs; a device leaving the registry leaves the gateway too.
    registry = {k: v for k, v in REGISTRY.items() if k != "room-1"}
    later = plan(registry, result.passwd, AclFile.parse(text), site=SITE, service_user="bondwatch")
    assert "gw-n1" in later.kept and "# gateway gw-n1: rdr-n1" in later.acl.render()
    assert "bw/v1/ordos-czb/temp/room-1" not in later.acl.render()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"devices": ["nope"]}, "not in the device registry"),
        ({"devices": ["bondwatch"]}, "service account"),
        ({"gateways": [("truck-01", ["room-1"])]}, "differ from device ids"),
        ({"devices": ["room-1"], "revoke": ["room-1"]}, "same run"),
    ],
)
def test_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ProvisionError, match=message):
        plan(REGISTRY, {}, None, site=SITE, service_user="bondwatch", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["gw", "gw=", "=a,b", "g w=a", "gw/x=a"])
def test_bad_gateway_spec(spec: str) -> None:
    with pytest.raises(ProvisionError, match="GATEWAY_ID=DEVICE_ID"):
        parse_gateway(spec)


def test_a_device_named_like_the_service_account_gets_no_login() -> None:
    result = plan({"bondwatch": "gps"}, {}, None, site=SITE, service_user="bondwatch")
    assert not result.credentials and result.warnings


def test_acl_sections_round_trip() -> None:
    text = "user bondwatch\ntopic readwrite bw/v1/#\n\n" + BEGIN + "\n# device a gps\nuser a\n" + END + "\n"
    parsed = AclFile.parse(text)
    assert parsed.fixed == "user bondwatch\ntopic readwrite bw/v1/#\n" and parsed.users() == ["a"]
    assert AclFile.parse(parsed.render()) == parsed


def test_credential_snippet() -> None:
    result = plan({"truck-01": "gps"}, {}, None, site=SITE, service_user="bondwatch")
    (credential,) = result.created
    text = credential_env(credential, SITE, "mqtts://broker.zone.example:8883", None)
    assert f"BONDWATCH_MQTT_URL=mqtts://truck-01:{credential.password}@broker.zone.example:8883\n" in text
    assert "BONDWATCH_SITE=ordos-czb" in text and "# write: bw/v1/ordos-czb/gps/truck-01" in text
