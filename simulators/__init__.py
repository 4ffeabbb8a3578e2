"""Simulators: contract traffic, virtual devices and scenarios, without hardware."""
