"""Real-time delivery: the WebSocket gateway, the per-process fan-out hub, presence, reactions."""
