"""Media without I/O: RTP/RTCP (RFC 3550), RFC 4733 events, G.711, jitter buffer, mixer, tones.

Functions work on numpy arrays of int16 samples at 8 kHz, 160 samples (20 ms) per frame.
"""
