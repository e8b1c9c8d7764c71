"""Engine adapters (ASR, TTS, VAD) behind small Protocols, and the worker pool that runs them."""
