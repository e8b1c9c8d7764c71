"""`dialtone call`: a scripted test caller on the media gateway's own SIP/RTP stack."""
