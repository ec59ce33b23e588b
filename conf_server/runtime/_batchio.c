/*
 * _batchio: one call that reads every leg's UDP socket, one call that sends every leg's packet.
 *
 * Why compiled: a tick of the media engine does one recv and one send per leg (RFC 3550 RTP,
 * one port pair per leg). From Python each of those costs 2.4-4.7 us of which the kernel's
 * share is about 1 us; at 1,500 legs the interpreter overhead alone used a third of a core.
 * These two functions loop over arrays of file descriptors in C, with the GIL released, so the
 * per-packet cost is the system call's own and the SIP/API thread can run meanwhile.
 *
 * Both functions take buffers (numpy arrays) that the caller preallocates and owns; nothing is
 * allocated per packet. Sockets must be non-blocking (MSG_DONTWAIT is passed as well).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#define ADDR_LEN 28 /* sizeof(struct sockaddr_in6): room for an IPv4 or IPv6 address */

typedef struct {
    Py_buffer view;
    int held;
} buf_t;

static int get_buf(PyObject *obj, buf_t *b, int writable, const char *name, Py_ssize_t itemsize) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT;
    if (writable) flags |= PyBUF_WRITABLE;
    if (PyObject_GetBuffer(obj, &b->view, flags) < 0) return -1;
    b->held = 1;
    if (itemsize && b->view.itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: items of %zd bytes expected, got %zd", name,
                     itemsize, b->view.itemsize);
        return -1;
    }
    return 0;
}

static void release(buf_t *b) {
    if (b->held) PyBuffer_Release(&b->view);
    b->held = 0;
}

static Py_ssize_t count_of(buf_t *b) { return b->view.len / b->view.itemsize; }

/* Row length of a 2-D uint8 buffer (rows x row_len). */
static Py_ssize_t row_len_of(buf_t *b, const char *name) {
    if (b->view.ndim != 2 || b->view.itemsize != 1) {
        PyErr_Format(PyExc_TypeError, "%s: a 2-D uint8 array is expected", name);
        return -1;
    }
    return b->view.shape[1];
}

PyDoc_STRVAR(recv_batch_doc,
"recv_batch(fds, slots, buf, lengths, out_slots, start, max_per_fd, addrs=None) -> int\n\n"
"Read up to max_per_fd datagrams from each socket fds[i] into the rows of buf from row\n"
"start on, recording each row's length in lengths and slots[i] in out_slots; with addrs\n"
"(rows x 28 uint8), each row's source sockaddr too (zeroed family when unknown). Stops\n"
"reading a socket at EAGAIN or any error (an ICMP error is consumed that way) and stops\n"
"altogether when buf is full. Returns the index after the last row written.");

static PyObject *recv_batch(PyObject *self, PyObject *args) {
    PyObject *o_fds, *o_slots, *o_buf, *o_len, *o_out, *o_addrs = Py_None;
    Py_ssize_t start, max_per_fd;
    if (!PyArg_ParseTuple(args, "OOOOOnn|O", &o_fds, &o_slots, &o_buf, &o_len, &o_out, &start,
                          &max_per_fd, &o_addrs))
        return NULL;
    buf_t fds = {0}, slots = {0}, buf = {0}, len = {0}, out = {0}, addrs = {0};
    PyObject *result = NULL;
    if (get_buf(o_fds, &fds, 0, "fds", sizeof(int32_t)) < 0) goto done;
    if (get_buf(o_slots, &slots, 0, "slots", sizeof(intptr_t)) < 0) goto done;
    if (get_buf(o_buf, &buf, 1, "buf", 1) < 0) goto done;
    if (get_buf(o_len, &len, 1, "lengths", sizeof(int32_t)) < 0) goto done;
    if (get_buf(o_out, &out, 1, "out_slots", sizeof(intptr_t)) < 0) goto done;
    if (o_addrs != Py_None && get_buf(o_addrs, &addrs, 1, "addrs", 1) < 0) goto done;
    Py_ssize_t row_len = row_len_of(&buf, "buf");
    if (row_len < 0) goto done;
    Py_ssize_t rows = buf.view.shape[0];
    Py_ssize_t n = count_of(&fds);
    if (count_of(&slots) < n || count_of(&len) < rows || count_of(&out) < rows ||
        (addrs.held && addrs.view.len < rows * ADDR_LEN) || start < 0 || start > rows) {
        PyErr_SetString(PyExc_ValueError, "recv_batch: array sizes do not match");
        goto done;
    }
    const int32_t *fd = fds.view.buf;
    const intptr_t *slot = slots.view.buf;
    uint8_t *base = buf.view.buf;
    int32_t *lengths = len.view.buf;
    intptr_t *out_slots = out.view.buf;
    uint8_t *addr_base = addrs.held ? addrs.view.buf : NULL;
    Py_ssize_t k = start;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && k < rows; i++) {
        for (Py_ssize_t r = 0; r < max_per_fd && k < rows; r++) {
            ssize_t got;
            if (addr_base) {
                struct sockaddr_storage ss;
                socklen_t sl = sizeof(ss);
                got = recvfrom(fd[i], base + k * row_len, (size_t)row_len, MSG_DONTWAIT,
                               (struct sockaddr *)&ss, &sl);
                if (got >= 0) {
                    memset(addr_base + k * ADDR_LEN, 0, ADDR_LEN);
                    memcpy(addr_base + k * ADDR_LEN, &ss, sl < ADDR_LEN ? sl : ADDR_LEN);
                }
            } else {
                got = recv(fd[i], base + k * row_len, (size_t)row_len, MSG_DONTWAIT);
            }
            if (got < 0) {
                if (errno == EINTR) { r--; continue; }
                break; /* EAGAIN: drained; ECONNREFUSED & co: the error is consumed */
            }
            lengths[k] = (int32_t)got;
            out_slots[k] = slot[i];
            k++;
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(k);
done:
    release(&fds); release(&slots); release(&buf); release(&len); release(&out);
    release(&addrs);
    return result;
}

PyDoc_STRVAR(send_batch_doc,
"send_batch(packets, fds, addrs, addrlens, status) -> int\n\n"
"Send row i of packets (a 2-D uint8 array) on socket fds[i]: with send() when addrlens[i] is\n"
"0 (a connected socket), else with sendto() to the sockaddr in row i of addrs (n x 28 uint8).\n"
"A row whose fd is negative is skipped. status[i] receives 0, the errno of a failed send, or\n"
"-1 for a skipped row. Returns the number of packets the kernel took.");

static PyObject *send_batch(PyObject *self, PyObject *args) {
    PyObject *o_pk, *o_fds, *o_addrs, *o_alen, *o_status;
    if (!PyArg_ParseTuple(args, "OOOOO", &o_pk, &o_fds, &o_addrs, &o_alen, &o_status))
        return NULL;
    buf_t pk = {0}, fds = {0}, addrs = {0}, alen = {0}, status = {0};
    PyObject *result = NULL;
    if (get_buf(o_pk, &pk, 0, "packets", 1) < 0) goto done;
    if (get_buf(o_fds, &fds, 0, "fds", sizeof(int32_t)) < 0) goto done;
    if (get_buf(o_addrs, &addrs, 0, "addrs", 1) < 0) goto done;
    if (get_buf(o_alen, &alen, 0, "addrlens", sizeof(int32_t)) < 0) goto done;
    if (get_buf(o_status, &status, 1, "status", sizeof(int32_t)) < 0) goto done;
    Py_ssize_t width = row_len_of(&pk, "packets");
    if (width < 0) goto done;
    Py_ssize_t n = pk.view.shape[0];
    if (count_of(&fds) < n || addrs.view.len < n * ADDR_LEN || count_of(&alen) < n ||
        count_of(&status) < n) {
        PyErr_SetString(PyExc_ValueError, "send_batch: array sizes do not match");
        goto done;
    }
    const uint8_t *base = pk.view.buf;
    const int32_t *fd = fds.view.buf;
    const uint8_t *addr = addrs.view.buf;
    const int32_t *addrlen = alen.view.buf;
    int32_t *st = status.view.buf;
    Py_ssize_t sent = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (fd[i] < 0) { st[i] = -1; continue; }
        ssize_t rc;
        do {
            if (addrlen[i] == 0)
                rc = send(fd[i], base + i * width, (size_t)width, MSG_DONTWAIT);
            else
                rc = sendto(fd[i], base + i * width, (size_t)width, MSG_DONTWAIT,
                            (const struct sockaddr *)(addr + i * ADDR_LEN),
                            (socklen_t)addrlen[i]);
        } while (rc < 0 && errno == EINTR);
        if (rc < 0) { st[i] = errno; continue; }
        st[i] = 0;
        sent++;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(sent);
done:
    release(&pk); release(&fds); release(&addrs); release(&alen); release(&status);
    return result;
}

static PyMethodDef methods[] = {
    {"recv_batch", recv_batch, METH_VARARGS, recv_batch_doc},
    {"send_batch", send_batch, METH_VARARGS, send_batch_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_batchio",
    "Batched non-blocking UDP receive and send over many sockets (see _batchio.c).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__batchio(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "ADDR_LEN", ADDR_LEN) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
