"""Owns stick-table replication with HAProxy 2.6's peers protocol (version 2.1, 2.0 understood).

Layers, bottom up: `varint` (HAProxy's variable-length integers), `messages` (frozen
message values), `codec` (bytes <-> messages: `Encoder`, incremental `Decoder`),
`session` (the handshake state machine of one connection, fed bytes), `sync` (what
each peer lacks and when to send it: cursors, pushes, ACKs, teach/learn, timers) —
all pure, no Twisted — then the adapters `protocol` (one connection) and `service`
(one peers section: listener, dials, one timer, ``show peers``).
"""
