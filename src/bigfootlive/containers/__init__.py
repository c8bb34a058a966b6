"""Event containers: one unit of compute per live event (see docs/containers.md)."""
