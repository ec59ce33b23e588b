"""The media engine's core without I/O: everything one 20 ms tick computes, and nothing it waits on.

Modules:

* ``legs``: the records shared with the call layer (``Leg``, ``Playback``, ``LegSummary``,
  ``EngineStats``);
* ``core``: ``MediaCore``, the per-slot arrays and the tick itself (packets in, packets out);
* ``overlays``: per-leg and per-meeting prompts turned into mixer overlays;
* ``rtcp``: the RTCP book (sender reports out, peers' reports in);
* ``clock``: tick accounting on absolute deadlines (lateness, overruns, skipped ticks).

No module here opens a socket, reads a clock, sleeps, starts a thread or draws its own random
numbers: time comes in as ``now`` and randomness from an injected ``numpy`` generator, so a tick
is a function of its inputs (``tests/test_architecture.py`` checks the imports). It may import
the standard library without I/O, ``numpy``, ``media`` and ``sip``.

It is driven by ``conf_server/runtime/engine.py``, which owns the tick thread, the real
monotonic clock, the sockets and their batch I/O, and the command queue from the event loop;
``conf_server/mixdown.py`` drives the same core on a virtual clock from WAV files.
"""
