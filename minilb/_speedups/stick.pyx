# cython: language_level=3
"""Compiled stick-table hot paths: ``track_key`` and the rate readers of
`minilb.stick.table.StickTable` (what ``_build_track_key`` and
``_build_rate_readers`` generate in Python, which stays the reference).

`TrackPath` is built per table from the table's own lists and arrays; every array
it touches is an ``array('I')`` read and written through the object each time (no
buffer is held, so the table may grow them between calls), each index checked
against the array's length.  Anything off the common path (a missing entry, a rate
period over, a clock that is not a float) calls back into the table's Python code.
"""

from cpython.array cimport array
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_SET_ITEM
from cpython.ref cimport Py_DECREF, Py_INCREF

API = 2
#: a key's dict: bits 16-19 of the key (of its hash), as `StickTable._shard_of`
cdef enum:
    _SHARD_SHIFT = 16  # the shift the code below uses
SHARD_SHIFT = _SHARD_SHIFT

cdef long long NIL = -1
cdef long long DETACHED = -2


cdef array _u32(arr):
    """``arr`` checked to be an ``array('I')`` (what the table's hot columns are)."""
    if arr is not None and arr.typecode != "I":
        raise TypeError("array('I') expected")
    return arr


cdef inline bint _in(array arr, Py_ssize_t row):
    return arr is not None and 0 <= row < arr.ob_size


cdef inline void _inc(array arr, Py_ssize_t row):
    # + 1 wrapping at 32 bits, as the generated code's OverflowError branch does
    arr.data.as_uints[row] = <unsigned int>(arr.data.as_uints[row] + 1u)


cdef inline object _list_get(list lst, Py_ssize_t i):
    if not 0 <= i < PyList_GET_SIZE(lst):
        raise IndexError("list index out of range")
    return <object>PyList_GET_ITEM(lst, i)


cdef inline void _list_set(list lst, Py_ssize_t i, object value) except *:
    if not 0 <= i < PyList_GET_SIZE(lst):
        raise IndexError("list assignment index out of range")
    old = <object>PyList_GET_ITEM(lst, i)
    Py_INCREF(value)
    PyList_SET_ITEM(lst, i, value)
    Py_DECREF(old)


cdef class Tick:
    """The tick cache of one table: ``refresh`` is the table's generated one (it
    computes the tick and the bounds of the current millisecond), its results kept
    here as C numbers."""

    cdef object seconds, refresh, env
    cdef double lo, hi
    cdef unsigned int now, exp_at

    def __cinit__(self, seconds, env):
        self.seconds = seconds
        self.refresh = env["refresh"]
        self.env = env
        self.lo = 1.0
        self.hi = 0.0

    cdef unsigned int read(self) except? 0xFFFFFFFF:
        s = self.seconds()
        cdef double d
        if type(s) is float:
            d = PyFloat_AS_DOUBLE(s)
            if self.lo <= d < self.hi:
                return self.now
        now = self.refresh(s)
        env = self.env
        self.lo = env["_lo"]
        self.hi = env["_hi"]
        self.exp_at = env["_exp_at"]
        self.now = now
        if type(s) is not float:
            self.hi = self.lo  # an exotic clock: no cache
        return self.now


cdef class Rate:
    """One stored rate column: tick, curr and prev arrays and the period."""

    cdef array t, c, p
    cdef long long period
    cdef object increment

    def __cinit__(self, arrays, long long period, increment):
        t, c, p = arrays
        self.t, self.c, self.p = _u32(t), _u32(c), _u32(p)
        self.period = period
        self.increment = increment

    cdef int count(self, Py_ssize_t row, unsigned int now) except -1:
        cdef long long elapsed
        if not (_in(self.t, row) and _in(self.c, row) and _in(self.p, row)):
            raise IndexError("array index out of range")
        elapsed = <long long>now - <long long>self.t.data.as_uints[row]
        if 0 <= elapsed < self.period:
            _inc(self.c, row)
        else:
            t, c, p = self.increment(
                self.t.data.as_uints[row], self.c.data.as_uints[row], self.p.data.as_uints[row], now, self.period, 1
            )
            self.t[row] = t
            self.c[row] = c
            self.p[row] = p
        return 0


cdef class RateReader:
    """``read(row)`` (a method: called without an argument tuple): what the
    generated ``read_<rate>`` gives; the table's
    ``read_rate(col, row)`` past the current period or off the arrays."""

    cdef Tick tick
    cdef Rate rate
    cdef object read_rate, col

    def __cinit__(self, Tick tick, Rate rate, read_rate, col):
        self.tick = tick
        self.rate = rate
        self.read_rate = read_rate
        self.col = col

    def read(self, Py_ssize_t row):
        cdef Rate r = self.rate
        cdef unsigned int now = self.tick.read()
        cdef long long elapsed, period = r.period
        cdef unsigned long long past, curr, rate
        if not (_in(r.t, row) and _in(r.c, row) and _in(r.p, row)):
            return self.read_rate(self.col, row)
        elapsed = <long long>now - <long long>r.t.data.as_uints[row]
        if 0 <= elapsed < period:
            past = r.p.data.as_uints[row]
            curr = r.c.data.as_uints[row]
            if not past:
                return curr
            if curr == 0 and past == 1:
                return 1
            rate = curr + past * <unsigned long long>(period - elapsed) // <unsigned long long>period
            return rate & 0xFFFFFFFFu
        return self.read_rate(self.col, row)


cdef class TrackPath:
    """``track(key, http_request)``: the table's ``track_key`` (see the module docstring)."""

    cdef Tick tick
    cdef object table, shards, get_or_create, renumber
    cdef list ref, lru_prev, lru_next
    cdef array exp, conn_cur, conn_cnt, http_req_cnt
    cdef Rate conn_rate, http_req_rate
    cdef bint expire, sync, counts_request, int_keys

    def __cinit__(
        self, Tick tick, table, shards, get_or_create, renumber, list ref, array exp, list lru_prev, list lru_next,
        array conn_cur, array conn_cnt, Rate conn_rate, array http_req_cnt, Rate http_req_rate, bint expire, bint sync, bint int_keys,
    ):
        self.tick = tick
        self.table = table
        self.shards = tuple(shards)
        if len(self.shards) != 16:
            raise ValueError("16 shards expected")
        self.get_or_create = get_or_create
        self.renumber = renumber
        self.ref = ref
        self.exp = _u32(exp)
        self.lru_prev = lru_prev
        self.lru_next = lru_next
        self.conn_cur = _u32(conn_cur)
        self.conn_cnt = _u32(conn_cnt)
        self.conn_rate = conn_rate
        self.http_req_cnt = _u32(http_req_cnt)
        self.http_req_rate = http_req_rate
        self.expire = expire
        self.sync = sync
        self.int_keys = int_keys
        self.counts_request = http_req_cnt is not None or http_req_rate is not None

    def track(self, key, http_request):
        cdef dict shard = <dict>self.shards[((key >> _SHARD_SHIFT) & 15) if self.int_keys else ((hash(key) >> _SHARD_SHIFT) & 15)]
        row_obj = shard.get(key)
        if row_obj is None:
            row_obj = self.get_or_create(key)
            if row_obj is None:
                return None
        cdef Py_ssize_t row = row_obj
        cdef unsigned int now = self.tick.read()
        cdef long long before, after, tail
        _list_set(self.ref, row, _list_get(self.ref, row) + 1)
        self._count(self.conn_cur, row)
        self._count(self.conn_cnt, row)
        if self.conn_rate is not None:
            self.conn_rate.count(row, now)
        if self.expire:
            if not _in(self.exp, row):
                raise IndexError("array index out of range")
            self.exp.data.as_uints[row] = self.tick.exp_at
        # the LRU list: to its tail (appended when detached)
        table = self.table
        tail_obj = table._lru_tail
        tail = tail_obj
        if row != tail:
            before_obj = _list_get(self.lru_prev, row)
            before = before_obj
            if before != DETACHED:
                after_obj = _list_get(self.lru_next, row)
                if before == NIL:
                    table._lru_head = after_obj
                else:
                    _list_set(self.lru_next, before, after_obj)
                _list_set(self.lru_prev, after_obj, before_obj)
            _list_set(self.lru_prev, row, tail_obj)
            _list_set(self.lru_next, row, NIL)
            if tail == NIL:
                table._lru_head = row_obj
            else:
                _list_set(self.lru_next, tail, row_obj)
            table._lru_tail = row_obj
        if self.sync:
            if not http_request:
                self.renumber(row_obj, 1)
                return row_obj
            self._count(self.http_req_cnt, row)
            if self.http_req_rate is not None:
                self.http_req_rate.count(row, now)
            self.renumber(row_obj, 2 if self.counts_request else 1)
        elif http_request:
            self._count(self.http_req_cnt, row)
            if self.http_req_rate is not None:
                self.http_req_rate.count(row, now)
        return row_obj

    cdef int _count(self, array arr, Py_ssize_t row) except -1:
        if arr is not None:
            if not _in(arr, row):
                raise IndexError("array index out of range")
            _inc(arr, row)
        return 0


cdef class ScRate:
    """``fetch(sess, txn, table=None)``: the ``scN_<rate>`` fetch of
    `minilb.stick.fetches._make_sc_rate` (the same steps, without a Python frame)."""

    cdef object name, metric, other
    cdef Py_ssize_t slot

    def __cinit__(self, name, Py_ssize_t slot, metric, other):
        self.name = name
        self.slot = slot
        self.metric = metric
        self.other = other

    def fetch(self, sess, txn, table=None):
        tracker = sess.stkctr[self.slot]
        if tracker is None:
            return None
        if table is None:
            t, row, _ = tracker
            try:
                read = t._rate_readers[self.name]
            except KeyError:
                return self.metric(t, row)
            return read(row)
        return self.other(self.metric, sess, self.slot, table, ())
