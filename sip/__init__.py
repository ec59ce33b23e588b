"""SIP without I/O (RFC 3261): messages, URIs, SDP, transactions, dialogs, digest auth.

Nothing in this package touches a socket, a clock or a random source: the runtime passes
bytes, addresses and ``now`` in, and takes datagrams, timers and events out.
"""
