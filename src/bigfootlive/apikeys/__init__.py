"""API keys for machine clients (media servers, CI pipelines)."""
