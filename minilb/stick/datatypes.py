"""Owns the catalogue of HAProxy 2.6 stick-table data types: names, wire bit numbers, storage kinds.

The bit number is the data type's position in the peers DEFINE bitfield and the
order of values in an update (peers-wire.md section 7).  ``kind`` says how a value is
stored and serialised:

- ``s32``: signed 32-bit (server_id, sign-extended to 64 bits on the wire)
- ``u32`` / ``u64``: plain counters
- ``rate``: a frequency counter (curr_tick, curr_ctr, prev_ctr) with a period
- ``dict``: a dictionary string (server_key)
- ``array_u32`` / ``array_rate``: ``gpt(n)``, ``gpc(n)``, ``gpc_rate(n,period)``
"""

from __future__ import annotations

import attrs


@attrs.frozen
class DataType:
    bit: int
    name: str
    kind: str  # s32 | u32 | u64 | rate | dict | array_u32 | array_rate
    #: "local" types are sent on the wire but never learned from a peer (conn_cur)
    local: bool = False
    #: names this type cannot be combined with in one table
    exclusive_with: tuple[str, ...] = ()

    @property
    def is_rate(self) -> bool:
        return self.kind in ("rate", "array_rate")

    @property
    def is_array(self) -> bool:
        return self.kind in ("array_u32", "array_rate")

    @property
    def takes_period(self) -> bool:
        return self.is_rate

    @property
    def has_param_block(self) -> bool:
        """Whether a peers DEFINE carries a parameter block for this type."""
        return self.is_rate or self.is_array


DATA_TYPES: tuple[DataType, ...] = (
    DataType(0, "server_id", "s32"),
    DataType(1, "gpt0", "u32", exclusive_with=("gpt",)),
    DataType(2, "gpc0", "u32", exclusive_with=("gpc",)),
    DataType(3, "gpc0_rate", "rate", exclusive_with=("gpc_rate",)),
    DataType(4, "conn_cnt", "u32"),
    DataType(5, "conn_rate", "rate"),
    DataType(6, "conn_cur", "u32", local=True),
    DataType(7, "sess_cnt", "u32"),
    DataType(8, "sess_rate", "rate"),
    DataType(9, "http_req_cnt", "u32"),
    DataType(10, "http_req_rate", "rate"),
    DataType(11, "http_err_cnt", "u32"),
    DataType(12, "http_err_rate", "rate"),
    DataType(13, "bytes_in_cnt", "u64"),
    DataType(14, "bytes_in_rate", "rate"),
    DataType(15, "bytes_out_cnt", "u64"),
    DataType(16, "bytes_out_rate", "rate"),
    DataType(17, "gpc1", "u32", exclusive_with=("gpc",)),
    DataType(18, "gpc1_rate", "rate", exclusive_with=("gpc_rate",)),
    DataType(19, "server_key", "dict"),
    DataType(20, "http_fail_cnt", "u32"),
    DataType(21, "http_fail_rate", "rate"),
    DataType(22, "gpt", "array_u32", exclusive_with=("gpt0",)),
    DataType(23, "gpc", "array_u32", exclusive_with=("gpc0", "gpc1")),
    DataType(24, "gpc_rate", "array_rate", exclusive_with=("gpc0_rate", "gpc1_rate")),
)

BY_NAME: dict[str, DataType] = {dt.name: dt for dt in DATA_TYPES}
BY_BIT: dict[int, DataType] = {dt.bit: dt for dt in DATA_TYPES}

#: Largest element count of gpt(n) / gpc(n) / gpc_rate(n,p) in HAProxy 2.6.
MAX_ARRAY_ELEMENTS = 100

#: Wire key types (peers DEFINE) of each `stick-table type`.
KEY_TYPE_CODES: dict[str, int] = {"integer": 2, "ip": 4, "ipv6": 5, "string": 6, "binary": 7}


def key_size(key_type: str, explicit_len: int | None) -> int:
    """HAProxy's key storage size for a table, which is also the key length a peers
    DEFINE announces: ip 4, ipv6 16, integer 4; string ``len N`` → N+1 (room for the
    NUL, so N usable bytes), string without ``len`` → 32 (31 usable bytes); binary
    ``len N`` → N, binary without ``len`` → 32."""
    if key_type in ("ip", "integer"):
        return 4
    if key_type == "ipv6":
        return 16
    if key_type == "string":
        return explicit_len + 1 if explicit_len is not None else 32
    return explicit_len if explicit_len is not None else 32


def max_key_bytes(key_type: str, size: int) -> int:
    """How many bytes of a key a table keeps (longer string keys are truncated)."""
    return size - 1 if key_type == "string" else size
