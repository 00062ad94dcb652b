# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled encoders of a stick table's peers update messages (issues 5 and 6).

They stand in for the encoders `minilb.stick.table.StickTable` generates for ``ip``
tables of plain counters and rates, with the same arguments, bytes and return values:

- `Teach`: ``teach(row, end, budget, timed, previous) -> (data, row, previous, count)``,
  the batched encoder of a full teach (`StickTable.wire_teach_encoder`);
- `Encode`: ``encode(update_id, expire, now, row) -> bytes``, one entry's message
  (`StickTable.wire_encoder`, the steady pushes).

The table's arrays are read through buffers (``PyObject_GetBuffer``: the typed
memoryview mechanism, one buffer per array, as many as the table has columns) taken at
the start of each call and released before it returns, so that no view outlives a call
that could resize an array.  While they are held nothing runs Python code apart from
the key dicts' lookups (int keys: no Python code either); every Python-level step (the
clock, the arguments' arithmetic) happens before.  Every index is checked against the
shortest of the arrays before it is read.
"""

from cpython.buffer cimport PyBUF_FORMAT, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItemWithError
from cpython.long cimport PyLong_AsUnsignedLongMask
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memmove

API = 2
#: a key's dict: bits 16-19 of the key, as `StickTable._shard_of`
cdef enum:
    _SHARD_SHIFT = 16  # the shift the code below uses
SHARD_SHIFT = _SHARD_SHIFT

cdef extern from "Python.h":
    bint PyLong_CheckExact(PyObject* o)
    Py_ssize_t PyLong_AsSsize_t(PyObject* o) except? -1

cdef enum:
    MSG_CLASS = 10  # stick-table update messages
    # how a value is read from its array
    OP_U32 = 0  # a u32 counter ('I')
    OP_U64 = 1  # a u64 counter ('Q')
    OP_AGE = 2  # a rate's tick, sent as its age: (now - tick) & MASK32 ('I')
    # message header: class, type, one-byte length (moved along when the body is >= 240)
    HEADER = 3
    MAX_LEN_BYTES = 2  # varint of a body length below 2288
    MAX_BODY_FIXED = 12  # update id, expiry, IPv4 key

cdef uint32_t MASK32 = 0xFFFFFFFF
cdef uint32_t HALF32 = 0x80000000


cdef inline unsigned char* put_varint(unsigned char* p, uint64_t v) noexcept nogil:
    """peers-wire.md 2.1 (not LEB128: 4 payload bits in the first byte)."""
    if v < 240:
        p[0] = <unsigned char>v
        return p + 1
    p[0] = <unsigned char>((v & 255) | 240)
    p += 1
    v = (v - 240) >> 4
    while v >= 128:
        p[0] = <unsigned char>((v & 255) | 128)
        p += 1
        v = (v - 128) >> 7
    p[0] = <unsigned char>v
    return p + 1


cdef inline unsigned char* put_u32(unsigned char* p, uint32_t v) noexcept nogil:
    p[0] = <unsigned char>(v >> 24)
    p[1] = <unsigned char>(v >> 16)
    p[2] = <unsigned char>(v >> 8)
    p[3] = <unsigned char>v
    return p + 4


cdef inline unsigned char* put_head(
    unsigned char* start, bint has_uid, uint32_t uid, bint has_exp, uint32_t left
) noexcept nogil:
    """The header of an update message at ``start`` (its length set by `finish_message`)
    and its update id (none: INCREMENTAL) and remaining expiry (none: not TIMED)."""
    cdef unsigned char* p = start + HEADER
    start[0] = MSG_CLASS
    if has_uid:
        start[1] = 0x85 if has_exp else 0x80
        p = put_u32(p, uid)
    else:
        start[1] = 0x86 if has_exp else 0x81
    if has_exp:
        p = put_u32(p, left)
    return p


cdef inline unsigned char* finish_message(unsigned char* start, unsigned char* p) noexcept nogil:
    """Set the length of the message at ``start`` whose body (from start + HEADER)
    ends at ``p``; a length of two varint bytes moves the body one byte on."""
    cdef Py_ssize_t n = p - start - HEADER
    cdef unsigned char tmp[4]
    cdef Py_ssize_t width
    if n < 240:
        start[2] = <unsigned char>n
        return p
    width = put_varint(tmp, <uint64_t>n) - tmp
    memmove(start + 2 + width, start + HEADER, <size_t>n)
    memcpy(start + 2, tmp, <size_t>width)
    return start + 2 + width + n


cdef class _Views:
    """The buffers of a list of arrays, taken by `take` and given back by `release`
    (always in a ``finally``)."""

    cdef Py_buffer* bufs
    cdef Py_ssize_t size
    cdef Py_ssize_t taken

    def __cinit__(self, Py_ssize_t size):
        self.bufs = <Py_buffer*>PyMem_Malloc(max(size, 1) * sizeof(Py_buffer))
        if self.bufs == NULL:
            raise MemoryError()
        self.size = size
        self.taken = 0

    def __dealloc__(self):
        self.release()
        PyMem_Free(self.bufs)

    cdef int take(self, list arrays, Py_ssize_t* rows) except -1:
        """Take every array's buffer; ``rows`` gets the length of the shortest."""
        cdef Py_buffer* buf
        cdef Py_ssize_t n
        rows[0] = -1
        for obj in arrays:
            if self.taken >= self.size:
                raise ValueError("too many arrays")
            buf = &self.bufs[self.taken]
            PyObject_GetBuffer(obj, buf, PyBUF_FORMAT)
            self.taken += 1
            if buf.itemsize not in (1, 4, 8) or buf.ndim > 1:
                raise ValueError("unexpected array layout")
            n = buf.len // buf.itemsize
            if rows[0] < 0 or n < rows[0]:
                rows[0] = n
        if rows[0] < 0:
            rows[0] = 0
        return 0

    cdef inline const void* ptr(self, Py_ssize_t i) noexcept:
        return self.bufs[i].buf

    cdef void release(self) noexcept:
        while self.taken > 0:
            self.taken -= 1
            PyBuffer_Release(&self.bufs[self.taken])


cdef class _Columns:
    """An ip table's keys and value arrays in wire order (see `Teach`, `Encode`)."""

    cdef list arrays  # keys, then the value arrays (subclasses add theirs after)
    cdef bytes ops  # one OP_* per value array
    cdef Py_ssize_t nvalues
    cdef Py_ssize_t max_entry  # the longest message an entry can give

    def __init__(self, keys, values):
        cdef Py_ssize_t longest = MAX_BODY_FIXED
        ops = bytearray()
        self.arrays = [_checked(keys, "I", "keys")]
        for array, is_age in values:
            code = getattr(array, "typecode", None)
            if is_age:
                ops.append(OP_AGE)
                self.arrays.append(_checked(array, "I", "a rate's tick"))
                longest += 5
            elif code == "I":
                ops.append(OP_U32)
                self.arrays.append(_checked(array, "I", "a value"))
                longest += 5
            elif code == "Q":
                ops.append(OP_U64)
                self.arrays.append(_checked(array, "Q", "a value"))
                longest += 10
            else:
                raise ValueError(f"values of type {code!r} are not handled")
        if longest >= 2288:
            raise ValueError("too many values for one message")
        self.ops = bytes(ops)
        self.nvalues = len(ops)
        self.max_entry = HEADER + MAX_LEN_BYTES + longest


cdef object _checked(object array, str code, str what):
    cdef Py_ssize_t size = 8 if code == "Q" else 4
    if getattr(array, "typecode", None) != code or array.itemsize != size:
        raise ValueError(f"{what} must be an array({code!r}) of {size}-byte items")
    return array


cdef inline unsigned char* put_values(
    unsigned char* p, Py_ssize_t row, uint32_t now, const unsigned char* ops, Py_ssize_t n,
    _Views views, Py_ssize_t first,
) noexcept:
    cdef Py_ssize_t i
    cdef uint64_t v
    for i in range(n):
        if ops[i] == OP_U32:
            v = (<const uint32_t*>views.ptr(first + i))[row]
        elif ops[i] == OP_U64:
            v = (<const uint64_t*>views.ptr(first + i))[row]
        else:
            v = <uint32_t>(now - (<const uint32_t*>views.ptr(first + i))[row])
        p = put_varint(p, v)
    return p


cdef class Encode(_Columns):
    """``encode(update_id, expire, now, row) -> bytes``: the whole update message of
    one entry (``update_id`` None: INCREMENTAL; ``expire`` None: not TIMED), as the
    generated `StickTable.wire_encoder`."""

    compiled = True

    cdef unsigned char* scratch

    def __cinit__(self, *args, **kwargs):
        self.scratch = NULL

    def __init__(self, keys, values):
        _Columns.__init__(self, keys, values)
        self.scratch = <unsigned char*>PyMem_Malloc(self.max_entry)
        if self.scratch == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self.scratch)

    def __call__(self, update_id, expire, now, Py_ssize_t row):
        cdef bint has_uid = update_id is not None
        cdef bint has_exp = expire is not None
        cdef uint32_t uid = 0, left = 0, tick
        cdef Py_ssize_t rows
        cdef unsigned char* p
        cdef unsigned char* start = self.scratch
        cdef _Views views
        # Python-level conversions first (`x & 0xFFFFFFFF` of any int)
        if has_uid:
            uid = <uint32_t>(PyLong_AsUnsignedLongMask(update_id) & MASK32)
        if has_exp:
            left = <uint32_t>(PyLong_AsUnsignedLongMask(expire) & MASK32)
        tick = <uint32_t>(PyLong_AsUnsignedLongMask(now) & MASK32)
        views = _Views(len(self.arrays))
        try:
            views.take(self.arrays, &rows)
            if row < 0:
                row += rows
            if row < 0 or row >= rows:
                raise IndexError("array index out of range")
            p = put_head(start, has_uid, uid, has_exp, left)
            p = put_u32(p, (<const uint32_t*>views.ptr(0))[row])
            p = put_values(p, row, tick, <const unsigned char*>self.ops, self.nvalues, views, 1)
            p = finish_message(start, p)
        finally:
            views.release()
        return PyBytes_FromStringAndSize(<char*>start, p - start)


cdef class Teach(_Columns):
    """``teach(row, end, budget, timed, previous) -> (data, row, previous, count)``:
    up to ``budget`` live entries from ``row`` (below ``end``) in row order as the
    update messages of a full teach, as the generated `StickTable.wire_teach_encoder`
    (which documents the arguments).  A row is live when the key dict of its key's
    shard maps that key to it, which is known without a lookup (most of the cost of a
    big table: cache misses) for a row in the table's update list: only live entries
    are there (the steady pushes rely on it too), and a freed row's flags are cleared."""

    compiled = True

    cdef object seconds
    cdef tuple shards
    cdef Py_ssize_t shard_mask
    cdef unsigned char in_updates
    cdef unsigned char remote

    def __init__(self, seconds, keys, shards, flags, useq, exp, values, int in_updates, int remote):
        _Columns.__init__(self, keys, values)
        self.seconds = seconds
        self.shards = tuple(shards)
        if not self.shards or len(self.shards) & (len(self.shards) - 1):
            raise ValueError("the number of shards must be a power of two")
        for shard in self.shards:
            if not isinstance(shard, dict):
                raise ValueError("shards must be dicts")
        self.shard_mask = len(self.shards) - 1
        if not isinstance(flags, bytearray):
            raise ValueError("flags must be a bytearray")
        # after the keys and values: flags, update sequence, expiry
        self.arrays += [flags, _checked(useq, "I", "useq"), _checked(exp, "I", "exp")]
        self.in_updates = <unsigned char>in_updates
        self.remote = <unsigned char>remote

    def __call__(self, Py_ssize_t row, Py_ssize_t end, Py_ssize_t budget, timed, previous):
        cdef uint32_t now = <uint32_t>(PyLong_AsUnsignedLongMask(int(self.seconds() * 1000)) & MASK32)
        cdef bint is_timed = bool(timed)
        cdef bint has_prev = previous is not None
        cdef uint32_t prev = 0
        cdef Py_ssize_t count = 0, rows, cap, pos = 0, nv = self.nvalues
        cdef Py_ssize_t base = 1 + nv  # index of flags among the views
        cdef unsigned char* out = NULL
        cdef unsigned char* grown
        cdef unsigned char* start
        cdef unsigned char* p
        cdef const uint32_t* keys
        cdef const unsigned char* flags
        cdef const uint32_t* useq
        cdef const uint32_t* exp
        cdef const unsigned char* ops = <const unsigned char*>self.ops
        cdef uint32_t key, uid, left
        cdef unsigned char fl
        cdef bint implicit
        cdef PyObject* found
        cdef _Views views
        if has_prev:
            prev = <uint32_t>(PyLong_AsUnsignedLongMask(previous) & MASK32)
        cap = min(max(min(budget, end - row), 1), 1024) * self.max_entry
        views = _Views(len(self.arrays))
        try:
            out = <unsigned char*>PyMem_Malloc(cap)
            if out == NULL:
                raise MemoryError()
            views.take(self.arrays, &rows)
            keys = <const uint32_t*>views.ptr(0)
            flags = <const unsigned char*>views.ptr(base)
            useq = <const uint32_t*>views.ptr(base + 1)
            exp = <const uint32_t*>views.ptr(base + 2)
            while row < end and count < budget:
                if row < 0 or row >= rows:
                    # a negative row reads from the end and is never a key's row
                    if row >= rows or row < -rows:
                        raise IndexError("array index out of range")
                    row += 1
                    continue
                key = keys[row]
                fl = flags[row]
                # in the update list: live (the table keeps only live entries there
                # and clears a freed row's flags); else live if its key's dict says so
                if not fl & self.in_updates:
                    found = PyDict_GetItemWithError(self.shards[(key >> _SHARD_SHIFT) & self.shard_mask], key)
                    if found == NULL or not (
                        PyLong_AsSsize_t(found) == row if PyLong_CheckExact(found) else not (<object>found != row)
                    ):
                        row += 1  # a free row, or freed and not reused
                        continue
                if fl & self.in_updates:
                    uid = (useq[row] + HALF32) & MASK32 if fl & self.remote else useq[row]
                else:
                    uid = 0
                implicit = has_prev and uid == <uint32_t>(prev + 1)
                has_prev = True
                prev = uid
                if pos + self.max_entry > cap:
                    cap *= 2
                    grown = <unsigned char*>PyMem_Realloc(out, cap)
                    if grown == NULL:
                        raise MemoryError()
                    out = grown
                start = out + pos
                left = 0
                if is_timed:
                    left = exp[row]
                    if left:
                        left = <uint32_t>(left - now)
                        if left >= HALF32:
                            left = 0  # already expired
                p = put_head(start, not implicit, uid, is_timed, left)
                p = put_u32(p, key)
                p = put_values(p, row, now, ops, nv, views, 1)
                pos = finish_message(start, p) - out
                count += 1
                row += 1
            data = PyBytes_FromStringAndSize(<char*>out, pos)
        finally:
            views.release()
            PyMem_Free(out)
        return data, row, (prev if count else previous), count
