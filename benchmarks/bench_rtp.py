"""Per-tick cost of the media front end: parse_batch, build_headers and G.711 encode/decode.

Prints microseconds per tick and per packet for a tick of K packets (default 1,500, the
per-core target of DESIGN.md §6), next to the scalar RtpPacket.parse for comparison.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from media import g711, rtp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--packets", type=int, default=1500, help="packets per 20 ms tick")
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    k = args.packets
    rng = np.random.default_rng(1)
    payload = g711.ulaw_encode(rng.integers(-8000, 8000, (k, 160), dtype=np.int16))
    headers = rtp.build_headers(
        0,
        np.arange(k, dtype=np.uint16),
        np.arange(k, dtype=np.uint32) * 160,
        np.arange(k, dtype=np.uint32),
        np.zeros(k, dtype=np.bool_),
    )
    buf = np.zeros((k, 256), dtype=np.uint8)
    buf[:, :12] = headers
    buf[:, 12:172] = payload
    lengths = np.full(k, 172, dtype=np.int32)
    datas = [bytes(buf[i, :172]) for i in range(k)]
    frames = rng.integers(-8000, 8000, (k, 160), dtype=np.int16)

    cases = {
        "parse_batch": lambda: rtp.parse_batch(buf, lengths),
        "scalar parse (loop)": lambda: [rtp.RtpPacket.parse(d) for d in datas],
        "build_headers": lambda: rtp.build_headers(
            0,
            headers[:, 2].astype(np.uint16),
            lengths.astype(np.uint32),
            lengths.astype(np.uint32),
            np.zeros(k, dtype=np.bool_),
        ),
        "ulaw_encode (K,160)": lambda: g711.ulaw_encode(frames),
        "ulaw_decode (K,160)": lambda: g711.ulaw_decode(payload),
        "alaw_encode (K,160)": lambda: g711.alaw_encode(frames),
    }
    print(f"tick of {k} packets, best of {args.repeat}")
    for name, fn in cases.items():
        best = min(timeit.repeat(fn, number=1, repeat=args.repeat))
        print(f"{name:24s} {best * 1e6:9.1f} µs/tick  {best * 1e6 / k:7.3f} µs/packet")


if __name__ == "__main__":
    main()
