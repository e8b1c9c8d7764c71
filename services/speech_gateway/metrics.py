"""The speech gateway's Prometheus metrics (bounded labels: engine, kind, outcome)."""

from __future__ import annotations

from dialtone.common.metrics import counter, gauge, histogram

ASR_LATENCY = histogram("speech_asr_latency_seconds",
                        "End of speech to final transcript, by engine", ["engine"])
ASR_DECODE = histogram("speech_asr_decode_seconds", "Wall time of one decode, by engine and kind",
                       ["engine", "kind"])
SPECULATIVE = counter("speech_speculative_decodes_total",
                      "Speculative decodes at the start of silence, by outcome (committed, discarded)",
                      ["outcome"])
TTS_FIRST_AUDIO = histogram("speech_tts_first_audio_seconds",
                            "Say received to first audio chunk sent, by engine and cache (hit, ahead: "
                            "rendered ahead and on its way, miss)",
                            ["engine", "cache"])
POOL_QUEUE_DEPTH = gauge("speech_pool_queue_depth", "Jobs waiting for a worker, by pool", ["pool"])
POOL_WAIT = histogram("speech_pool_wait_seconds", "Time a job waited for a worker, by pool", ["pool"])
POOL_REFUSED = counter("speech_pool_refused_total", "Jobs refused because the queue was full", ["pool"])
BARGE_INS = counter("speech_barge_ins_total", "Prompts interrupted by the caller, by reason",
                    ["reason"])
BACKCHANNELS = counter("speech_backchannels_total",
                       "Speech over a prompt that did not interrupt it, by reason", ["reason"])
VAD_DECISIONS = counter("speech_vad_decisions_total", "Per-frame VAD decisions, by result (speech, silence)",
                        ["result"])
UTTERANCES = counter("speech_utterances_total", "Endpointed utterances, by end (silence, early, forced)", ["end"])
ENDPOINT_WAIT = histogram("speech_endpoint_wait_seconds",
                          "Caller's end of speech to the endpoint firing (vad.stop_ms, or less on an early end)")
TURN_MODEL_SECONDS = histogram("speech_turn_model_seconds",
                               "CPU time of one end-of-turn model decision (vad.turn_model), features included")
TURN_LATENCY = histogram("speech_turn_latency_seconds",
                         "Caller's end of speech to the first frame of the next prompt sent (media's report)")
BARGE_IN_REACTION = histogram("speech_barge_in_reaction_seconds",
                              "Caller's speech onset over a prompt to the StopPlayback sent (the prompt "
                              "went silent earlier where it was held at onset)")
PROMPT_HOLDS = counter("speech_prompt_holds_total",
                       "Prompts silenced at speech onset, by outcome (stopped; resumed: a backchannel; "
                       "released: a likely onset that never became speech)", ["outcome"])
ACTIVE_CALLS = gauge("speech_active_calls", "Calls with an open StreamCall")
RUNTIME_RECONNECTS = counter("speech_runtime_reconnects_total", "Converse streams resumed after a break",
                             ["outcome"])
RUNTIME_REFUSALS = counter("speech_runtime_refusals_total",
                           "Calls the runtime refused (ended, not resumed), by gRPC status", ["code"])
SAYS_SKIPPED = counter("speech_says_skipped_total", "Say/Play actions not played because their key was played")
EAGER_REPLIES = counter("speech_eager_replies_total",
                        "Replies rendered ahead from a pause's speculative transcript, by outcome (prepared; "
                        "committed: the turn ended with the same words and the dialog said it; cancelled: "
                        "the caller talked on or ended with other words; unused: the dialog said something else)",
                        ["outcome"])
