"""The rules engine: readings in (from the broker, through ingest's triage), alerts and gate decisions out.

bw/v1/{site}/{gps,temp,rfid}/+  ->  triage  ->  Engine steps (ordered)  ->  Effects
    ->  one transaction: alerts, alert_events, gate_passages, rule_state  ->  Relay  ->  MQTT
"""
