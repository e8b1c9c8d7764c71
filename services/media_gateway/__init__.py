"""media_gateway: SIP and RTP (and WebRTC) in, 16 kHz frames to the speech gateway."""
