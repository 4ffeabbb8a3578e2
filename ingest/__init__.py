"""Ingest: contract messages from MQTT, validated, into TimescaleDB; everything else into dead letters.

broker --(shared subscription, QoS 1, manual PUBACK)--> mqtt.Subscriber
       --> triage (topic, size, UTF-8, JSON, schema) --> writer (COPY, one transaction)
       --> commit --> PUBACK for every message of the batch
"""
