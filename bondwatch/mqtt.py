"""Building paho-mqtt clients from the settings' broker URL (TLS, credentials, MQTT 5)."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bondwatch.settings import MqttTarget


def make_client(
    target: MqttTarget, client_id: str, *, manual_ack: bool = False, persistent_v311: bool = False
) -> mqtt.Client:
    """An MQTT 5 client, or with ``persistent_v311`` an MQTT 3.1.1 client with a persistent session."""
    if persistent_v311:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
            manual_ack=manual_ack,
        )
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
        )
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        # The broker's certificate must chain to the given CA (else the system's) and name the host.
        client.tls_set(
            ca_certs=target.ca_file,
            certfile=target.cert_file,
            keyfile=target.key_file,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        client.tls_insecure_set(False)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client
