"""speech_gateway: VAD, local ASR and TTS, barge-in."""
