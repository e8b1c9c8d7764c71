"""What a call's facts and events may hold, one table for the services that check them at their edge:
the speech gateway refuses what the runtime would refuse, so a caller's input is never refused in the
middle of a call (docs/security.md, the limits tables)."""

from __future__ import annotations

DTMF_KEYS = frozenset("0123456789*#ABCD")
MAX_DIALOG_NAME = 128
MAX_URI = 1024               # caller, callee, a transfer's target
MAX_CALL_ID = 256
MAX_HEADERS = 128
MAX_HEADER_NAME = 128
MAX_HEADER_VALUE = 4096
# All headers together: a SIP request is at most 64 kB (one UDP datagram), headers included.
MAX_HEADER_CHARS = 64 * 1024
MAX_UTTERANCE_ID = 256       # the runtime's own are idempotency keys (at most 157 characters)
MAX_REASON = 256
