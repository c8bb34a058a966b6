"""BigfootLive: a multi-tenant live-streaming platform backend."""

__version__ = "0.1.0"
