"""The managed media server: nginx with the RTMP module, configured and supervised by
`bigfootlive serve` (MEDIA_SERVER_MODE=managed), or printed for an operator's own fleet
(`bigfootlive media-server config`, MEDIA_SERVER_MODE=external)."""
