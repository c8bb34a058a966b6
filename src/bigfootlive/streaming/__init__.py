"""Media-server integration: callbacks, playback configuration, stream health."""
