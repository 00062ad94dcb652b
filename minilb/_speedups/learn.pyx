# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The peers learner's hot loop, compiled: `minilb.peers.codec.update_runner`'s
generated ``run`` over `minilb.stick.table.StickTable.remote_apply_source`, for the
same plans (per value a u32 or u64 counter or a rate; IPv4 or integer keys).

``make_runner(env, kinds, fallback)`` gives a callable with the generated run's
signature, ``run(buf, pos, end, last_id, max_count) -> (pos, last_id, count)``,
that decodes the consecutive UPDATE / INCREMENTAL / TIMED messages at ``buf[pos:end]``
and stores each into the table exactly as the generated code does (same columns,
expiry and LRU slack, "one newer entry at the tail" step, remote update ids), and
stops before the first message it does not take (another class or type, a length of
240 or more, an incomplete message, a body that cannot be read), which the caller
then decodes the generic way.  ``env`` is the table's part of the generated source
(``remote_apply_source(plan)[0]``); ``fallback`` is the generated run itself, used
for arguments outside what a decoder passes (a negative ``pos``, ``end`` beyond the
buffer).

It works on the table's own structures: the shard dicts, the free list and the LRU
lists (Python lists of row ints, the very objects the pure code stores), and the
key, expiry, flag, update-sequence and data arrays through buffers taken per call.
The table's scalars (``_count``, ``_lru_head``/``_lru_tail``, ``_upd_head``/
``_upd_tail``, ``update``) are read on entry and written back before returning and
before every call back into Python; the two calls it makes, ``get_or_create`` (no
free row: a purge or new rows) and ``_lru_relink`` (an entry that is not already in
place at the LRU tail), are made with every buffer released (an array with an
exported buffer cannot be resized) and are followed by a fresh read of everything.
"""

from cpython.buffer cimport PyBUF_FORMAT, PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.dict cimport PyDict_GetItemWithError, PyDict_SetDefault
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_SET_ITEM
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t

API = 1

DEF MAX_VALUES = 48
# key, expiry, flags, update sequence, update list prev/next, then the data columns
DEF FIXED = 6
DEF MAX_ARRAYS = FIXED + 3 * MAX_VALUES

cdef enum:
    K_U32 = 0
    K_U64 = 1
    K_RATE = 2

cdef enum:
    V_KEYS = 0
    V_EXP = 1
    V_FLAGS = 2
    V_USEQ = 3
    V_UPD_PREV = 4
    V_UPD_NEXT = 5

cdef Py_ssize_t NIL = -1
cdef object NIL_OBJ = -1
cdef uint32_t HALF = 0x80000000
cdef uint32_t EVEN = 0xFFFFFFFE  # a rate's tick is even (`counters.from_age`)
cdef uint64_t LOW32 = 0xFFFFFFFF
cdef uint8_t IN_UPDATES = 1
cdef uint8_t IN_UPDATES_REMOTE = 3
cdef Py_ssize_t MAX_ROWS = 0x7FFFFFFF  # the update list links are 32-bit


cdef inline uint32_t be32(const uint8_t* b) noexcept nogil:
    return (<uint32_t>b[0] << 24) | (<uint32_t>b[1] << 16) | (<uint32_t>b[2] << 8) | b[3]


cdef inline bint read_varint(const uint8_t* b, Py_ssize_t* at, Py_ssize_t lim, uint64_t* out) noexcept nogil:
    """One varint at ``at[0]``, all of it before ``lim``, of at most 10 bytes and 64
    bits (`minilb.peers.varint.decode`); False when it is not."""
    cdef Py_ssize_t q = at[0]
    cdef uint64_t value, add
    cdef uint32_t byte
    cdef int shift = 4
    cdef int used = 1
    if q >= lim:
        return False
    value = b[q]
    q += 1
    if value >= 240:
        while True:
            if used >= 10 or q >= lim:
                return False
            byte = b[q]
            q += 1
            used += 1
            if shift == 60:  # the tenth byte: the value must stay within 64 bits
                if byte >= 16:
                    return False
                add = value + (<uint64_t>byte << 60)
                if add < value:
                    return False
                value = add
            else:
                value += <uint64_t>byte << shift
            if byte < 128:
                break
            shift += 7
    at[0] = q
    out[0] = value
    return True


cdef inline void set_row(list rows, Py_ssize_t i, object value) noexcept:
    cdef PyObject* old = PyList_GET_ITEM(rows, i)
    Py_INCREF(value)
    PyList_SET_ITEM(rows, i, value)
    Py_XDECREF(old)


cdef class _Views:
    """The table's arrays as buffers, taken per call and released before any call back
    into Python."""

    cdef Py_buffer bufs[MAX_ARRAYS]
    cdef void* ptr[MAX_ARRAYS]
    cdef int count
    cdef int held
    cdef Py_ssize_t rows

    cdef int take(self, list arrays, const char* formats, list lru_prev, list lru_next) except -1:
        cdef int i
        cdef Py_ssize_t n
        cdef Py_buffer* view
        cdef char fmt
        self.rows = min(PyList_GET_SIZE(lru_prev), PyList_GET_SIZE(lru_next), MAX_ROWS)
        self.count = len(arrays)
        for i in range(self.count):
            view = &self.bufs[i]
            PyObject_GetBuffer(arrays[i], view, PyBUF_WRITABLE | PyBUF_FORMAT)
            self.held = i + 1
            fmt = formats[i]
            if view.format == NULL or view.format[0] != fmt or view.format[1] != 0:
                raise TypeError("a stick table array of an unexpected type")
            if view.itemsize != (8 if fmt == c"Q" else (1 if fmt == c"B" else 4)):
                raise TypeError("a stick table array of an unexpected item size")
            n = view.len // view.itemsize
            if n < self.rows:
                self.rows = n
            self.ptr[i] = view.buf
        return 0

    cdef void release(self) noexcept:
        cdef int i
        for i in range(self.held):
            PyBuffer_Release(&self.bufs[i])
        self.held = 0


cdef class _Scalars:
    """The loop's copies of the table's scalars."""

    cdef Py_ssize_t used  # _count
    cdef object head_obj  # _lru_head, _lru_tail (the row objects themselves)
    cdef object tail_obj
    cdef Py_ssize_t tail
    cdef Py_ssize_t upd_head
    cdef Py_ssize_t upd_tail
    cdef uint32_t update

    cdef int load(self, table) except -1:
        self.used = table._count
        self.head_obj = table._lru_head
        self.tail_obj = table._lru_tail
        self.tail = self.tail_obj
        self.upd_head = table._upd_head
        self.upd_tail = table._upd_tail
        self.update = table.update & 0xFFFFFFFF
        return 0

    cdef int store(self, table) except -1:
        table._count = self.used
        table._lru_head = self.head_obj
        table._lru_tail = self.tail_obj
        table._upd_head = self.upd_head
        table._upd_tail = self.upd_tail
        table.update = self.update
        return 0


cdef class Runner:
    """See the module docstring."""

    cdef object table
    cdef object get_or_create
    cdef object lru_relink
    cdef object seconds
    cdef object fallback
    cdef list shards
    cdef Py_ssize_t shard_mask
    cdef int shard_shift
    cdef list free
    cdef list lru_prev
    cdef list lru_next
    cdef list arrays
    cdef char formats[MAX_ARRAYS + 1]
    cdef Py_ssize_t size
    cdef uint32_t expire
    cdef bint sync
    cdef uint32_t slack
    cdef int nvalues
    cdef int kinds[MAX_VALUES]
    cdef int first_array[MAX_VALUES]  # of each value, -1 when the table does not store it

    def __call__(self, buf, pos, end, last_id, max_count):
        cdef Py_buffer data
        if pos < 0:
            return self.fallback(buf, pos, end, last_id, max_count)
        PyObject_GetBuffer(buf, &data, PyBUF_SIMPLE)
        try:
            if end > data.len:
                return self.fallback(buf, pos, end, last_id, max_count)
            return self._run(<const uint8_t*>data.buf, data.len, pos, end, last_id, max_count)
        finally:
            PyBuffer_Release(&data)

    cdef object _run(self, const uint8_t* b, Py_ssize_t blen, Py_ssize_t pos, Py_ssize_t end,
                     object last_id, object max_count):
        cdef Py_ssize_t limit = max_count if max_count < (1 << 62) else (1 << 62)
        cdef uint32_t now = (int(self.seconds() * 1000) & 0xFFFFFFFF)
        cdef uint32_t last = last_id & 0xFFFFFFFF
        cdef Py_ssize_t count = 0
        cdef _Views views = _Views()
        # the table's scalars, written back before returning and before each call out
        cdef _Scalars sc = _Scalars()
        # one message
        cdef Py_ssize_t p, stop, lim, row, before, first
        cdef uint32_t uid, key, when, ahead
        cdef uint32_t expire_ms = 0
        cdef uint32_t behind = 0
        cdef bint timed, ok, step, new
        cdef int t, i, j
        cdef uint64_t values[3 * MAX_VALUES]
        cdef uint64_t* v
        cdef object shard, key_obj, row_obj, before_obj, first_obj
        cdef PyObject* found
        cdef uint32_t* exp
        cdef list lru_prev = self.lru_prev
        cdef list lru_next = self.lru_next
        cdef list free = self.free
        sc.load(self.table)
        try:
            views.take(self.arrays, self.formats, lru_prev, lru_next)
            while count < limit and end - pos >= 3 and b[pos] == 10:
                stop = pos + 3 + b[pos + 2]
                if b[pos + 2] >= 240 or stop > end:
                    break
                lim = stop if stop < blen else blen
                p = pos + 3
                t = b[pos + 1]
                if t == 0x86:
                    if p + 8 > lim:
                        break
                    uid = last + 1
                    timed = True
                    expire_ms = be32(b + p)
                    key = be32(b + p + 4)
                    p += 8
                elif t == 0x81:
                    if p + 4 > lim:
                        break
                    uid = last + 1
                    timed = False
                    key = be32(b + p)
                    p += 4
                elif t == 0x85:
                    if p + 12 > lim:
                        break
                    uid = be32(b + p)
                    timed = True
                    expire_ms = be32(b + p + 4)
                    key = be32(b + p + 8)
                    p += 12
                elif t == 0x80:
                    if p + 8 > lim:
                        break
                    uid = be32(b + p)
                    timed = False
                    key = be32(b + p + 4)
                    p += 8
                else:
                    break
                ok = True
                v = values
                for i in range(self.nvalues):
                    if self.kinds[i] == K_RATE:
                        ok = (read_varint(b, &p, lim, v) and read_varint(b, &p, lim, v + 1)
                              and read_varint(b, &p, lim, v + 2))
                        v[0] &= LOW32
                        v[1] &= LOW32
                        v[2] &= LOW32
                        v += 3
                    else:
                        ok = read_varint(b, &p, lim, v)
                        if self.kinds[i] == K_U32:
                            v[0] &= LOW32
                        v += 1
                    if not ok:
                        break
                if not ok:
                    break  # truncated or too long: the generic decoder says so

                # --- the store (remote_apply_source) ---
                key_obj = key
                shard = <object>PyList_GET_ITEM(self.shards, (key >> self.shard_shift) & self.shard_mask)
                if PyList_GET_SIZE(free) and sc.used < self.size:
                    # a free row at hand: one dict probe finds the key or stores it
                    row_obj = <object>PyList_GET_ITEM(free, PyList_GET_SIZE(free) - 1)
                    row = row_obj
                    if not 0 <= row < views.rows:
                        raise IndexError("a free stick table row out of range")
                    found = PyDict_SetDefault(shard, key_obj, row_obj)
                    new = found == <PyObject*>row_obj
                    if not new:
                        row_obj = <object>found
                else:
                    found = PyDict_GetItemWithError(shard, key_obj)
                    new = False
                    if found != NULL:
                        row_obj = <object>found
                if new:
                    free.pop()
                    (<uint32_t*>views.ptr[V_KEYS])[row] = key
                    sc.used += 1
                    set_row(lru_prev, row, sc.tail_obj)
                    set_row(lru_next, row, NIL_OBJ)
                    if sc.tail == NIL:
                        sc.head_obj = row_obj
                    else:
                        set_row(lru_next, sc.tail, row_obj)
                    sc.tail_obj = row_obj
                    sc.tail = row
                elif found == NULL:
                    # a purge or new rows: the table's own get_or_create
                    row_obj = self._call_out(sc, views, self.get_or_create, key_obj)
                if row_obj is not None:
                    row = row_obj
                    if not 0 <= row < views.rows:
                        raise IndexError("a stick table row out of range")
                    v = values
                    for i in range(self.nvalues):
                        j = self.first_array[i]
                        if self.kinds[i] == K_RATE:
                            if j >= 0:
                                (<uint32_t*>views.ptr[j])[row] = (now - <uint32_t>v[0]) & EVEN
                                (<uint32_t*>views.ptr[j + 1])[row] = <uint32_t>v[1]
                                (<uint32_t*>views.ptr[j + 2])[row] = <uint32_t>v[2]
                            v += 3
                        else:
                            if j >= 0:
                                if self.kinds[i] == K_U64:
                                    (<uint64_t*>views.ptr[j])[row] = v[0]
                                else:
                                    (<uint32_t*>views.ptr[j])[row] = <uint32_t>v[0]
                            v += 1
                    exp = <uint32_t*>views.ptr[V_EXP]
                    if timed:
                        when = now + expire_ms
                        if when == 0:
                            when = 1
                        exp[row] = when
                    elif self.expire:
                        when = now + self.expire
                        if when == 0:
                            when = 1
                        exp[row] = when
                    else:
                        when = exp[row]
                    # the LRU list: already in place at the tail, a little older than the
                    # tail (as old as it), or in front of one newer entry at the tail
                    step = False
                    if row == sc.tail:
                        before_obj = <object>PyList_GET_ITEM(lru_prev, row)
                        before = before_obj
                        if before != NIL:
                            if not 0 <= before < views.rows:
                                raise IndexError("a stick table LRU link out of range")
                            ahead = exp[before] - when
                            if 0 < ahead < HALF:
                                step = True
                                if when and ahead < self.slack:
                                    exp[row] = exp[before]
                                    step = False
                                elif when:
                                    first_obj = <object>PyList_GET_ITEM(lru_prev, before)
                                    first = first_obj
                                    if first != NIL:
                                        if not 0 <= first < views.rows:
                                            raise IndexError("a stick table LRU link out of range")
                                        behind = exp[first] - when
                                    if first == NIL or not 0 < behind < HALF or behind < self.slack:
                                        if first != NIL and 0 < behind < HALF:
                                            exp[row] = exp[first]
                                        set_row(lru_next, before, NIL_OBJ)
                                        sc.tail_obj = before_obj
                                        sc.tail = before
                                        set_row(lru_prev, row, first_obj)
                                        set_row(lru_next, row, before_obj)
                                        set_row(lru_prev, before, row_obj)
                                        if first == NIL:
                                            sc.head_obj = row_obj
                                        else:
                                            set_row(lru_next, first, row_obj)
                                        step = False
                    else:
                        step = True
                    if step:
                        # anywhere else: the table's own relink (unlink, insert by expiry)
                        self._call_out(sc, views, self.lru_relink, row_obj)
                    if self.sync and not (<uint8_t*>views.ptr[V_FLAGS])[row] & IN_UPDATES:
                        sc.update += 1
                        (<uint32_t*>views.ptr[V_USEQ])[row] = sc.update
                        (<uint8_t*>views.ptr[V_FLAGS])[row] |= IN_UPDATES_REMOTE
                        (<int32_t*>views.ptr[V_UPD_PREV])[row] = <int32_t>sc.upd_tail
                        (<int32_t*>views.ptr[V_UPD_NEXT])[row] = -1
                        if sc.upd_tail == NIL:
                            sc.upd_head = row
                        else:
                            if not 0 <= sc.upd_tail < views.rows:
                                raise IndexError("a stick table update link out of range")
                            (<int32_t*>views.ptr[V_UPD_NEXT])[sc.upd_tail] = <int32_t>row
                        sc.upd_tail = row
                last = uid
                pos = stop
                count += 1
        finally:
            views.release()
            sc.store(self.table)
        if count == 0:
            return pos, last_id, 0
        return pos, last, count

    cdef object _call_out(self, _Scalars sc, _Views views, func, arg):
        """``func(arg)`` with the table's scalars written back and no buffer held;
        everything read again afterwards."""
        sc.store(self.table)
        views.release()
        try:
            result = func(arg)
        finally:
            sc.load(self.table)
        views.take(self.arrays, self.formats, self.lru_prev, self.lru_next)
        return result


def make_runner(env, kinds, fallback):
    """The compiled runner for a table's ``env`` (``remote_apply_source(plan)[0]``)
    and the plan's value kinds (``"u32"``, ``"u64"``, ``"rate"``), or None where it
    does not apply (another plan or table layout: use ``fallback``)."""
    cdef Runner runner = Runner.__new__(Runner)
    cdef int i
    from array import array

    if len(kinds) > MAX_VALUES or env.get("NIL") != -1 or "SYNC" not in env:
        return None
    if not 0 <= env["SLACK"] < HALF or not 0 <= env["expire"] <= 0xFFFFFFFF:
        return None
    shards = env["shards"]
    if type(shards) is not list or not shards or len(shards) & (len(shards) - 1):
        return None
    if any(type(shard) is not dict for shard in shards):
        return None
    # the key's dict, chosen as the table chooses it (`StickTable._shard_of`): some bits
    # of the key, ``(key >> shift) & mask``
    shard_of = getattr(env["table"], "_shard_of", None)
    if shard_of is None:
        return None
    mask = len(shards) - 1
    samples = (0, 0xFFFFFFFF, 0x12345678, 0x9ABCDEF0, *(1 << bit for bit in range(32)))
    for shift in range(32):
        if all(shard_of(key) is shards[(key >> shift) & mask] for key in samples):
            break
    else:
        return None
    for name in ("free", "lru_prev", "lru_next"):
        if type(env[name]) is not list:
            return None
    fixed = [env["keys"], env["exp"], env["flags"], env["useq"], env["upd_prev"], env["upd_next"]]
    formats = [b"I", b"I", b"B", b"I", b"i", b"i"]
    for arr, fmt in zip(fixed, formats):
        if fmt == b"B":
            if type(arr) is not bytearray:
                return None
        elif type(arr) is not array or arr.typecode != fmt.decode():
            return None
    runner.nvalues = len(kinds)
    for i, kind in enumerate(kinds):
        if kind == "rate":
            runner.kinds[i] = K_RATE
            cols = [env.get(f"t{i}"), env.get(f"c{i}"), env.get(f"p{i}")]
            fmt = b"I"
        elif kind in ("u32", "u64"):
            runner.kinds[i] = K_U32 if kind == "u32" else K_U64
            cols = [env.get(f"a{i}")]
            fmt = b"I" if kind == "u32" else b"Q"
        else:
            return None
        if cols[0] is None:
            runner.first_array[i] = -1
            continue
        for arr in cols:
            if type(arr) is not array or arr.typecode != fmt.decode():
                return None
        runner.first_array[i] = len(fixed)
        fixed += cols
        formats += [fmt] * len(cols)
    runner.slack = env["SLACK"]
    runner.table = env["table"]
    runner.get_or_create = env["get_or_create"]
    runner.lru_relink = env["lru_relink"]
    runner.seconds = env["seconds"]
    runner.fallback = fallback
    runner.shards = shards
    runner.shard_mask = mask
    runner.shard_shift = shift
    runner.free = env["free"]
    runner.lru_prev = env["lru_prev"]
    runner.lru_next = env["lru_next"]
    runner.arrays = fixed
    joined = b"".join(formats)
    for i in range(len(joined)):
        runner.formats[i] = joined[i]
    runner.formats[len(joined)] = 0
    runner.size = env["size"]
    runner.expire = env["expire"]
    runner.sync = env["SYNC"]
    return runner
