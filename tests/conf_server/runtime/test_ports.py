"""RTP port pairs: even/odd, skipping ports in use, exhaustion, delayed reuse."""

from __future__ import annotations

import socket

import pytest

from conf_server.runtime.ports import PortAllocator, PortsExhaustedError


def _free_base() -> int:
    """An even port with the next few ports free on 127.0.0.1 (best effort)."""
    for base in range(41000, 60000, 16):
        probes = []
        try:
            for p in range(base, base + 8):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                probes.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in probes:
                s.close()
        return base
    raise RuntimeError("no free port block")


def test_pairs_are_even_odd_and_bound() -> None:
    base = _free_base()
    alloc = PortAllocator("127.0.0.1", base, base + 7)
    pair = alloc.allocate()
    assert pair.port == base
    assert pair.rtp.getsockname()[1] == base
    assert pair.rtcp.getsockname()[1] == base + 1
    alloc.release(pair)
    assert alloc.in_use == 0


def test_a_port_held_elsewhere_is_skipped() -> None:
    base = _free_base()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", base + 1))  # RTCP port of the first pair
    try:
        alloc = PortAllocator("127.0.0.1", base, base + 7)
        assert alloc.allocate().port == base + 2
    finally:
        squatter.close()


def test_exhaustion() -> None:
    base = _free_base()
    alloc = PortAllocator("127.0.0.1", base, base + 5)  # pairs base, base+2, base+4
    pairs = [alloc.allocate() for _ in range(3)]
    with pytest.raises(PortsExhaustedError):
        alloc.allocate()
    alloc.release(pairs[0])
    assert alloc.allocate().port == base  # the only free one


def test_a_released_port_is_not_reused_at_once() -> None:
    base = _free_base()
    alloc = PortAllocator("127.0.0.1", base, base + 5)
    first = alloc.allocate()
    alloc.release(first)
    assert alloc.allocate().port == base + 2
    assert alloc.allocate().port == base + 4
    assert alloc.allocate().port == base


def test_rtp_socket_is_shareable_from_bind_and_rtcp_is_not() -> None:
    base = _free_base()
    alloc = PortAllocator("127.0.0.1", base, base + 7)
    pair = alloc.allocate()
    try:
        assert pair.rtp.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        assert pair.rtcp.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
        # A second SO_REUSEPORT socket (the transport's foreign-packet catcher) can join the
        # RTP port while the pair holds it; a plain socket cannot take it.
        catcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        catcher.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        catcher.bind(("127.0.0.1", pair.port))
        catcher.close()
        plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", pair.port))
        plain.close()
    finally:
        alloc.release(pair)


def test_a_port_held_without_reuseport_is_skipped() -> None:
    base = _free_base()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", base))  # RTP port of the first pair, not shareable
    try:
        alloc = PortAllocator("127.0.0.1", base, base + 7)
        assert alloc.allocate().port == base + 2
    finally:
        squatter.close()
