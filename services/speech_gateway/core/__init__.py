"""Sans-I/O cores of the speech gateway: endpointing, turn-taking (when the caller has finished),
barge-in, playback bookkeeping.

Each takes events and ``now`` (milliseconds of call time) and returns what to do;
none touches sockets, threads, models or the clock.
"""
