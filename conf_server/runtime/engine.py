"""The live media engine: one 20 ms tick on absolute monotonic deadlines, in its own thread.

References: RFC 3550 (RTP/RTCP), RFC 4733 (digits), RFC 3264 (re-INVITE changes a leg's
address, codec and hold state); DESIGN.md §6 (per-packet Python is the cost; drain once per tick).

Theory of operation
-------------------
:class:`MediaEngine` is the façade the SIP call layer uses. It owns a sans-IO
:class:`~conf_server.engine.core.MediaCore` (the tick: packets in, packets out; the package
``conf_server.engine`` holds it and everything else without I/O) and an
:class:`~conf_server.runtime.rtp_transport.RtpTransport` (the sockets). This module is only the
driver: the thread, the real clock, the batch I/O and the command queue. Each tick reads every
leg's RTP socket into one preallocated batch, runs the core, and sends one packet per leg.
Where a tick's time goes at 1,500 legs in rooms of 3 (this VM, warm, medians): reading
~4 µs per leg (``recv_into`` + ``FIONREAD``), sending ~4.5 µs per leg (on loopback the
``send`` also runs the receiver's kernel path), the core ~3 ms for all legs together.

**Thread, not the asyncio loop.** Measured on this machine (``loop.call_at`` ticks of 4 ms of
work beside an API-like 8 ms pure-Python handler every 25 ms, 5 s): in the loop the tick's
lateness was p50 1.0 ms / p99 8.5 ms / max 11.6 ms; in a thread p50 0.2 ms / p99 7.5 ms / max
7.7 ms. In the loop a tick waits for whatever callback is running; in a thread it waits at most
one GIL switch interval, and not at all while the loop thread is in a syscall, a socket wait or
numpy. So the tick runs in a thread: the API and SIP share the loop and cannot hold the tick
behind a long handler. Consequences:

* every command (add, update, join, leave, flags, prompts) is queued and applied by the tick
  thread between ticks, so a tick sees one consistent topology;
* callbacks (digits, talking, prompt done, a finished recording, port release) go back with one
  ``loop.call_soon_threadsafe`` per tick and so always run in the loop thread;
* ``remove_leg`` returns the summary at once from the counters (plain reads) and queues the
  slot's release; its ports are released in the loop thread after the tick thread let go.

Timing: the tick thread reads ``time.monotonic`` and sleeps until each absolute deadline
(``start + k × 20 ms``); :class:`~conf_server.engine.clock.TickClock` does the accounting
(lateness histogram, overruns, ticks skipped when more than ``MAX_BEHIND`` behind; its module
docstring has the rules). An overrun is logged here as ``engine.overrun`` with its lateness, and
every ``STATS_EVERY_TICKS`` ticks an ``engine.stats`` line sums up the interval.

Memory: a tick keeps its temporaries small (receive rows of 512 bytes, codes decoded from a
view, whole-array jitter updates), because multi-MB temporaries made glibc map and fault fresh
pages every tick. With those gone, tuning glibc (``mallopt``: no trim, high mmap threshold)
measured no gain in the tick thread, so the allocator is left alone.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from conf_server.engine.clock import STATS_EVERY_TICKS, TickClock
from conf_server.engine.core import TICK, MediaCore, RxBatch
from conf_server.engine.legs import (
    DigitCallback,
    DoneCallback,
    EngineStats,
    Leg,
    LegSummary,
    Playback,
    RecordCallback,
    TalkCallback,
)
from conf_server.logs import get_logger
from conf_server.runtime.ports import PortAllocator
from conf_server.runtime.rtp_transport import LegSocket, RtpTransport
from media.dtmf import Digit
from media.errors import MediaConfigError
from media.mixer import MAX_GAIN_DB, MIN_GAIN_DB
from media.playback import PromptPlayer
from sip.offer_answer import MediaParams

log = get_logger("media.engine")

RX_ROWS = 8192
# Rows of the receive batch. A 20 ms G.711 packet is 172 bytes; 512 leaves room for CSRCs and
# header extensions, and a longer datagram (truncated to the row) cannot hold a 160-byte frame
# the engine accepts anyway. Short rows keep a tick's packets in 4 MB instead of 16, which made
# header parsing and decoding of 1,500 packets about twice as fast (cache and TLB misses).
RX_ROW_LEN = 512
Command = Callable[[], None]


def realtime(priority: int) -> bool:
    """Ask SCHED_FIFO ``priority`` for the calling thread (Linux: pid 0 is this thread).

    Like FreeSWITCH's and Asterisk's real-time option: under load the kernel otherwise let
    other processes run in the tick thread's place for 5-35 ms (benchmarks/README.md, REST
    API under media load); a FIFO thread runs as soon as it wakes. Refused without root or
    CAP_SYS_NICE: logged, and the engine runs with normal scheduling.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:  # AttributeError: not Linux
        log.warning("engine.realtime_refused", priority=priority, error=str(exc))
        return False
    log.info("engine.realtime", priority=priority)
    return True


def _no_digit(digit: Digit) -> None:
    """A removed leg's digit handler: nobody listens any more."""


def _remote(params: MediaParams) -> tuple[str, int] | None:
    if params.remote_port == 0:
        return None
    return (params.remote_addr, params.remote_port)


class MediaEngine:
    """All legs' media on one clock; the SIP call layer's entry point (see module docstring)."""

    def __init__(
        self,
        *,
        ports: PortAllocator,
        jitter_min_ms: int = 20,
        jitter_max_ms: int = 200,
        strict_source: bool = True,
        strict_learn_packets: int = 4,
        realtime_priority: int = 0,
        ids: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = 2048,
        seed: int | None = None,
        tick_hook: Callable[[], None] | None = None,
    ) -> None:
        self.ports = ports
        self.host = ports.host
        self._ids = ids if ids is not None else itertools.count(1).__next__
        self._clock = clock
        if not 0 <= realtime_priority <= 99:
            raise MediaConfigError(f"realtime priority {realtime_priority} is not 0..99")
        self.realtime_priority = realtime_priority
        self.stats = EngineStats()
        self._interval = EngineStats()  # since the last engine.stats line (tick thread)
        self.core = MediaCore(
            capacity,
            jitter_min_ms=jitter_min_ms,
            jitter_max_ms=jitter_max_ms,
            rng=np.random.default_rng(seed),
            wall_offset=time.time() - time.monotonic(),
        )
        self.transport = RtpTransport(
            ports, strict=strict_source, learn_packets=strict_learn_packets
        )
        self._rx = RxBatch.empty(RX_ROWS, RX_ROW_LEN)
        self._sockets: dict[int, LegSocket] = {}  # slot -> sockets (tick thread)
        self._commands: deque[Command] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._tick_hook = tick_hook  # tests inject a slow tick here

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the tick thread; callbacks will run in the calling loop."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="media-tick", daemon=True)
        self._thread.start()
        log.info("engine.started", capacity=self.core.capacity, host=self.host)

    async def stop(self) -> None:
        """Stop the tick thread and release every leg's ports."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        await asyncio.to_thread(thread.join)
        self._thread = None
        self._apply_commands()
        for leg in [leg for leg in self.core.legs if leg is not None]:
            self.remove_leg(leg)
        self._apply_commands()
        self.transport.close()
        log.info(
            "engine.stopped",
            ticks=self.stats.ticks,
            overruns=self.stats.overruns,
            skipped=self.stats.skipped,
            lateness_p99_ms=self.stats.p99_ms,
            packets_out=self.stats.packets_out,
            packets_due=self.stats.packets_expected,
        )

    # -- commands (loop thread) -------------------------------------------------------------

    def _submit(self, command: Command) -> None:
        if self._thread is None:
            command()  # not running: nothing can tick meanwhile
        else:
            self._commands.append(command)

    def add_leg(
        self,
        params: MediaParams,
        *,
        on_digit: DigitCallback,
        on_talking: TalkCallback | None = None,
    ) -> Leg:
        """Allocate a port pair and a slot for a new call's media; hears silence until joined."""
        slot = self.core.reserve_slot()
        sockets = self.transport.open(slot, _remote(params))
        leg = Leg(self._ids(), self.host, sockets.pair.port, params, slot, on_digit, on_talking)

        def add() -> None:
            self._sockets[slot] = sockets
            self.core.add(leg, self._clock())

        self._submit(add)
        return leg

    def update_leg(self, leg: Leg, params: MediaParams) -> None:
        """A re-INVITE changed the address, codec or hold state; a new address is re-learned."""
        moved = _remote(params) != _remote(leg.params)
        leg.params = params

        def update() -> None:
            self.core.update(leg)
            if moved:
                self.transport.relearn(self._sockets[leg.slot], _remote(params))

        self._submit(update)

    def remove_leg(self, leg: Leg) -> LegSummary:
        """Stop a leg's media, release its ports, and return its summary."""
        sockets = self._sockets.get(leg.slot)
        foreign = 0 if sockets is None else sockets.foreign
        summary = self.core.summary(leg.slot, foreign)
        leg.removed = True

        def remove() -> None:
            sock = self._sockets.pop(leg.slot)
            dropped = self.transport.detach(sock)
            self.core.remove(leg.slot, dropped)
            # The callbacks close over the call that owns the leg (call -> leg -> callback ->
            # call): unhook them so the call is freed by reference counting, not left for a
            # full collection (conf_server/runtime/heap.py says why that matters).
            leg.on_digit, leg.on_talking = _no_digit, None
            self._in_loop(lambda: self.ports.release(sock.pair))

        self._submit(remove)
        # The call layer's ``call.ended`` line carries these fields; this one is for debugging.
        log.debug("media.summary", **summary.as_log())
        return summary

    def watch_talking(self, leg: Leg, callback: TalkCallback | None) -> None:
        """Tell ``callback`` (in the loop thread) when the leg starts or stops talking.

        Set between ticks like every other change to a leg, never from the loop thread; a leg
        already removed keeps no callback (it would hold its call alive, ``heap.py``).
        """

        def watch() -> None:
            if not leg.removed:
                leg.on_talking = callback

        self._submit(watch)

    def join(self, leg: Leg, meeting: str) -> None:
        """Put a leg into a meeting (applied at the next tick)."""
        self._submit(lambda: self.core.set_meeting(leg, meeting))

    def leave(self, leg: Leg) -> None:
        """Take a leg out of its meeting; it hears silence (or its prompt) again."""
        self._submit(lambda: self.core.set_meeting(leg, None))

    def set_flags(
        self,
        leg: Leg,
        *,
        muted: bool | None = None,
        deaf: bool | None = None,
        held: bool | None = None,
        listener: bool | None = None,
        gain_in_db: float | None = None,
        gain_out_db: float | None = None,
    ) -> None:
        """Change a leg's flags and gains (None leaves a value alone); gains within the mixer's
        ``MIN_GAIN_DB``…``MAX_GAIN_DB``."""
        for name, gain in (("gain_in_db", gain_in_db), ("gain_out_db", gain_out_db)):
            if gain is not None and not MIN_GAIN_DB <= gain <= MAX_GAIN_DB:
                raise ValueError(f"{name} {gain} outside [{MIN_GAIN_DB:g}, {MAX_GAIN_DB:g}] dB")
        flags = {
            "muted": muted,
            "deaf": deaf,
            "held": held,
            "listener": listener,
            "gain_in_db": gain_in_db,
            "gain_out_db": gain_out_db,
        }
        self._submit(lambda: self.core.set_flags(leg.slot, **flags))

    def play(
        self,
        leg: Leg,
        clips: Sequence[NDArray[np.int16]],
        *,
        exclusive: bool,
        on_done: DoneCallback | None = None,
    ) -> Playback:
        """Play clips to one leg, replacing its meeting audio (``exclusive``) or mixed into it."""
        player = PromptPlayer(clips)
        handle = Playback(on_done=on_done)
        self._submit(lambda: self.core.play(leg.slot, player, exclusive=exclusive, handle=handle))
        return handle

    def play_meeting(
        self,
        meeting: str,
        clips: Sequence[NDArray[np.int16]],
        *,
        on_done: DoneCallback | None = None,
        exclude: Sequence[Leg] = (),
    ) -> Playback:
        """Play clips into a whole meeting (tones, announcements), mixed with its audio.

        Legs in ``exclude`` (an entrant, for its own entry tone) do not hear these clips but
        keep hearing the meeting.
        """
        player = PromptPlayer(clips)
        handle = Playback(on_done=on_done)
        left_out = tuple(exclude)
        self._submit(lambda: self.core.play_meeting(meeting, player, handle, left_out))
        return handle

    def record(self, leg: Leg, seconds: float, on_done: RecordCallback) -> None:
        """Record ``seconds`` of the leg's received audio (decoded, 8 kHz int16) from the next
        tick on; ``on_done`` gets the clip in the loop thread. Nothing comes if the leg goes."""
        if not 0.0 <= seconds <= 60.0:
            raise ValueError(f"recording of {seconds} s outside [0, 60] s")
        frames = round(seconds / TICK)
        self._submit(lambda: self.core.record(leg, frames, on_done))

    def set_music_on_hold(self, samples: NDArray[np.int16]) -> None:
        """The clip every held leg hears, looped from one shared position."""
        clip = np.array(samples, dtype=np.int16)
        self._submit(lambda: self.core.set_music_on_hold(clip))

    # -- the tick thread ----------------------------------------------------------------------

    def _apply_commands(self) -> None:
        commands = self._commands
        while commands:
            commands.popleft()()

    def _run(self) -> None:
        if self.realtime_priority:
            realtime(self.realtime_priority)
        ticker = TickClock(self._clock() + TICK, self.stats)
        while not self._stop.is_set():
            wait = ticker.deadline - self._clock()
            if wait > 0:
                time.sleep(wait)
            lateness = ticker.started(self._clock())
            self._interval.ticks += 1
            self._interval.record_lateness(lateness)
            try:
                self.tick_once()
            except Exception:  # a bug in one tick must not silence every call (DESIGN §4.4)
                self.stats.tick_errors += 1
                log.exception("engine.tick_failed", tick=self.stats.ticks)
            ended = self._clock()
            due = ticker.deadline + TICK  # the deadline this tick ran past, if it overran
            verdict = ticker.finished(ended)
            if verdict.overrun:
                self.stats.skipped += verdict.skipped
                self._interval.overruns += 1
                self._interval.skipped += verdict.skipped
                log.warning(
                    "engine.overrun",
                    lateness_ms=round((ended - due) * 1000.0, 2),
                    skipped=verdict.skipped,
                )
            if self._interval.ticks >= STATS_EVERY_TICKS:
                self._report_interval()

    def _report_interval(self) -> None:
        """Log the last ``STATS_EVERY_TICKS`` ticks (``engine.stats``) and start afresh."""
        done, self._interval = self._interval, EngineStats()
        log.info(
            "engine.stats",
            ticks=done.ticks,
            legs=len(self._sockets),
            overruns=done.overruns,
            skipped=done.skipped,
            lateness_p50_ms=round(done.p50_ms, 2),
            lateness_p99_ms=round(done.p99_ms, 2),
            lateness_max_ms=round(done.max_lateness_ms, 2),
            packets_out=done.packets_out,
            packets_due=done.packets_expected,
        )

    def tick_once(self) -> None:
        """One tick against the sockets: commands, drain, core tick, send, callbacks."""
        self._apply_commands()
        now = self._clock()
        rtcp = self.transport.receive(self._rx)
        for slot, data in rtcp:
            self.core.rtcp_received(slot, data, now)
        if self._tick_hook is not None:
            self._tick_hook()
        tx = self.core.tick(now, self._rx)
        sent = self.transport.send(tx)
        for stats in (self.stats, self._interval):
            stats.packets_in += self._rx.count
            stats.packets_out += sent
            stats.packets_expected += len(tx.slots)
        self.stats.foreign_dropped = self.transport.foreign_total
        self._flush_callbacks()

    def _in_loop(self, command: Command) -> None:
        if self._loop is None or self._thread is None:
            command()
        else:
            self._loop.call_soon_threadsafe(command)

    def _flush_callbacks(self) -> None:
        outbox = self.core.outbox
        if not outbox:
            return
        batch = list(outbox)
        outbox.clear()
        self._in_loop(lambda: _run_callbacks(batch))


def _run_callbacks(batch: list[Command]) -> None:
    for callback in batch:
        try:
            callback()
        except Exception:  # one call's callback must not take the others down (DESIGN §4.4)
            log.exception("engine.callback_failed")
