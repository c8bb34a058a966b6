"""Live events: the lifecycle state machine, stream keys and playback ids."""
