"""Coverage-guided fuzzing of the parsers that read peer bytes (issue: "one datagram must not
silence every meeting").

Everything a peer sends reaches a parser in ``sip/`` or ``media/`` on the event loop or the
engine thread.  A parser that raises something other than its documented error, or that takes
long on a crafted input, stalls or breaks more than the peer's own call.  These targets feed
those parsers with atheris (libFuzzer for Python) and treat either as a crash.

Targets (one module each; its docstring says what it drives and what it checks)
------------------------------------------------------------------------------

* ``sip_udp``: datagrams into ``SipEndpoint``; ``parse_message``, ``validate_request``,
  ``error_response_for``;
* ``sip_tcp``: a byte stream cut into reads through ``StreamFramer``, then the endpoint;
* ``sdp``: ``SessionDescription.parse``, its round trip, ``answer_offer``, ``accept_answer``;
* ``digest``: challenges and credentials — ``Challenge.parse``, ``authorization``,
  ``DigestServer.verify``, a client/server round trip;
* ``media``: ``RtpPacket.parse`` (and ``parse_batch``), ``parse_compound`` with its round trip,
  ``DtmfReceiver`` and ``TelephoneEvent``.

The crash rule (``tests/fuzz/common.py``): any exception other than the one the called function
documents for peer input, a broken documented property (round trip, segmentation, batch vs
scalar parse), or an input taking more than 10 ms without instrumentation
(``tests/fuzz/replay.py`` times it again: fastest of 5 runs, wall-clock and CPU time).

Running
-------
::

    python -m tests.fuzz TARGET [--seconds N] [--corpus DIR]   # default 60 s, temporary corpus
    make fuzz                                # every target, FUZZ_SECONDS (600) each,
                                             # corpus kept in var/fuzz/TARGET
    python -m tests.fuzz.replay FILE...      # apply the crash rule to saved inputs
    python -m tests.fuzz.replay --minimize FILE --out tests/data/fuzz/regressions/T-what.bin

A crash is saved as ``tests/data/fuzz/crashes/TARGET-<sha1>.bin`` (not committed) with a
``.txt`` beside it naming it (exception type and the innermost project function, or
``slow in <function>``), and the run goes on looking for other crashes until its time is up;
the exit status is 1 when it saved any.  To keep one, minimise it into
``tests/data/fuzz/regressions/TARGET-shortdescription.bin``: ``test_fuzz_short.py`` replays every
file there on each test run, and the runner adds them to the seeds (one that still crashes is
named in the run's summary but not reported again as a crash).

Data: ``tests/data/fuzz/seeds/TARGET/`` holds hand-written seeds; the rest come from the
repository's vectors (the RFC 4475/5118 torture corpus, ``tests/sip/vectors*``,
``tests/media/vectors``) through each target's ``seeds()``.

The pieces: ``runner.py`` (this package's ``__main__``) orchestrates; ``engine.py`` is the
instrumented fuzzing process it starts; ``replay.py`` judges inputs without instrumentation.
Nothing here imports ``sip`` or ``media`` at package level: the fuzzing process must import them
under instrumentation.
"""
