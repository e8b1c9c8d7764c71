"""Sans-I/O cores of the speech gateway: endpointing, barge-in, playback bookkeeping.

Each takes events and ``now`` (milliseconds of call time) and returns what to do;
none touches sockets, threads, models or the clock.
"""
