"""The broker's TLS listener with the development CA: verified connections only."""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import stat
import uuid
from pathlib import Path

import pytest
from cryptography import x509

from bondwatch.mqtt import make_client
from bondwatch.services.manager import LocalServices
from bondwatch.services.tls import ensure_dev_pki
from bondwatch.services.tls import main as tls_main
from bondwatch.settings import CommonSettings, MqttTarget
from tests.bondwatch.test_services import listen_addresses
from tests.security.conftest import PrivateBroker, connect


@pytest.fixture
def tls_target(services: LocalServices, test_env: dict[str, str]) -> MqttTarget:
    """The platform account on the local broker's TLS listener, trusting the development CA."""
    plain = MqttTarget.parse(test_env["BONDWATCH_MQTT_URL"])
    ca = services.mosquitto.pki.ca_cert
    return MqttTarget.parse(
        f"mqtts://{plain.username}:{plain.password}@127.0.0.1:{services.settings.mqtt_tls_port}?ca={ca}"
    )


def test_services_up_made_a_ca_and_a_server_certificate(services: LocalServices) -> None:
    pki = services.mosquitto.pki
    assert pki.folder == services.settings.state_dir / "tls"
    for key in (pki.ca_key, pki.server_key, services.mosquitto.host_dir / "tls" / "server.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1"}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_tls_listener_is_on_loopback_beside_the_plain_one(services: LocalServices) -> None:
    conf = (services.mosquitto.host_dir / "mosquitto.conf").read_text().splitlines()
    assert services.settings.mqtt_tls_port == 18883
    assert f"listener {services.settings.mqtt_tls_port} 127.0.0.1" in conf
    assert f"listener {services.settings.mqtt_port} 127.0.0.1" in conf
    assert listen_addresses(services.settings.mqtt_tls_port) == {"127.0.0.1"}


def test_client_with_the_ca_connects(tls_target: MqttTarget) -> None:
    session = connect(f"mqtts://127.0.0.1:{tls_target.port}", tls_target.username, tls_target.password,
                      ca_file=Path(tls_target.ca_file or ""))  # fmt: skip
    try:
        assert not session.connack.is_failure, session.connack
        topic = f"bw/v1/t-{uuid.uuid4().hex[:8]}/status/tls-probe"
        assert session.subscribe(topic)[0].value < 0x80
        assert not session.publish(topic, b"{}").is_failure
        session.wait_received(topic)
    finally:
        session.close()


def test_ca_file_from_the_settings(tls_target: MqttTarget, services: LocalServices) -> None:
    url = f"mqtts://{tls_target.username}:{tls_target.password}@127.0.0.1:{tls_target.port}"
    settings = CommonSettings(mqtt_url=url, mqtt_ca_file=services.mosquitto.pki.ca_cert)
    assert settings.mqtt.ca_file == str(services.mosquitto.pki.ca_cert)
    # A CA in the URL wins over the setting.
    other = CommonSettings(mqtt_url=url + "?ca=/etc/zone-ca.pem", mqtt_ca_file=services.mosquitto.pki.ca_cert)
    assert other.mqtt.ca_file == "/etc/zone-ca.pem"
    session = connect(settings.mqtt_url, ca_file=Path(settings.mqtt.ca_file or ""))
    session.close()
    assert not session.connack.is_failure


def test_client_without_the_ca_is_refused(tls_target: MqttTarget) -> None:
    """Verified against the system's CAs, the development CA's certificate is rejected."""
    client = make_client(dataclasses.replace(tls_target, ca_file=None), f"test-tls-{uuid.uuid4().hex[:8]}")
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect(tls_target.host, tls_target.port, keepalive=10)


def test_client_with_another_ca_is_refused(tls_target: MqttTarget, tmp_path: Path) -> None:
    stranger = ensure_dev_pki(tmp_path / "other-ca")
    client = make_client(dataclasses.replace(tls_target, ca_file=str(stranger.ca_cert)), "test-tls-other-ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect(tls_target.host, tls_target.port, keepalive=10)


def test_hostname_is_verified(private_broker: PrivateBroker, test_env: dict[str, str]) -> None:
    """The private broker's certificate names localhost only: 127.0.0.1 is refused with the right CA."""
    target = MqttTarget.parse(f"mqtts://127.0.0.1:{private_broker.broker.tls_port}?ca={private_broker.ca_file}")
    client = make_client(target, "test-tls-hostname")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"match"):
        client.connect(target.host, target.port, keepalive=10)
    session = connect(private_broker.tls_url, "bondwatch", private_broker.service_password,
                      ca_file=private_broker.ca_file)  # fmt: skip
    session.close()
    assert not session.connack.is_failure, session.connack


def test_plain_mqtt_on_the_tls_port_gets_nowhere(tls_target: MqttTarget) -> None:
    """A plain CONNECT (MQTT 3.1.1, no credentials) on the TLS port gets no CONNACK, only a closed link."""
    connect_packet = bytes([0x10, 12, 0, 4, *b"MQTT", 4, 2, 0, 10, 0, 0])
    with socket.create_connection((tls_target.host, tls_target.port), timeout=5) as sock:
        sock.sendall(connect_packet)
        answer = b""
        try:
            while chunk := sock.recv(1024):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert not answer.startswith(b"\x20"), answer  # 0x20: CONNACK


def test_dev_pki_is_made_once(tmp_path: Path) -> None:
    first = ensure_dev_pki(tmp_path / "tls")
    made = {p: p.read_bytes() for p in (first.ca_cert, first.ca_key, first.server_cert, first.server_key)}
    again = ensure_dev_pki(tmp_path / "tls")
    assert {p: p.read_bytes() for p in made} == made and again == first
    # Another host list: a new server certificate from the same CA.
    ensure_dev_pki(tmp_path / "tls", ("broker.zone.example",))
    assert first.ca_cert.read_bytes() == made[first.ca_cert]
    assert first.server_cert.read_bytes() != made[first.server_cert]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mqtt://h:1883?ca=/x.pem", "needs mqtts"),
        ("mqtts://h:8883?cafile=/x.pem", "unknown or repeated"),
        ("mqtts://h:8883?ca=/a.pem&ca=/b.pem", "unknown or repeated"),
        ("mqtts://h:8883?cert=/c.pem", "go together"),
    ],
)
def test_tls_url_parameters_are_checked(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MqttTarget.parse(url)


def test_tls_url_parameters() -> None:
    target = MqttTarget.parse("mqtts://dev:pw@broker.zone.example:8883?ca=/etc/bw/ca.pem&cert=/d.pem&key=/d.key")
    assert (target.ca_file, target.cert_file, target.key_file) == ("/etc/bw/ca.pem", "/d.pem", "/d.key")
    assert (target.host, target.port, target.username, target.password) == ("broker.zone.example", 8883, "dev", "pw")


def test_dev_certificates_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m bondwatch.services.tls DIR --host NAME --owner UID:GID`, as compose's dev-certificates runs it."""
    folder = tmp_path / "certs"
    assert tls_main([str(folder), "--host", "broker.staging.example", "--owner", f"{os.getuid()}:{os.getgid()}"]) == 0
    assert "broker.staging.example" in capsys.readouterr().out
    cert = x509.load_pem_x509_certificate((folder / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.staging.example"]
    assert stat.S_IMODE((folder / "server.key").stat().st_mode) == 0o600
