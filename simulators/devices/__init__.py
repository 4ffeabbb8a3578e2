"""Virtual field devices that speak their real wire protocols, for tests and demos without hardware."""
