"""Types of the compiled batch socket I/O (conf_server/runtime/_batchio.c).

Arguments are C-contiguous buffers (numpy arrays); numpy's stubs do not declare ``Buffer``.
"""

ADDR_LEN: int

def recv_batch(
    fds: object,
    slots: object,
    buf: object,
    lengths: object,
    out_slots: object,
    start: int,
    max_per_fd: int,
    addrs: object = None,
    /,
) -> int: ...
def send_batch(
    packets: object, fds: object, addrs: object, addrlens: object, status: object, /
) -> int: ...
