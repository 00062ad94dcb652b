"""The rule engine: owns everything between a proxy's rule words in the config model and
the per-request verdicts (pure: no twisted).

- `samples`: fetch and converter registries, typed values, sample expressions
- `payload`: raw-buffer fetches for ``tcp-request content`` inspection (TLS SNI...)
- `patterns`: ACL match methods compiled over precomputed data
- `acl`: ACL keywords, predefined ACLs, ``if|unless`` conditions
- `logformat`: ``%[expr]`` strings of set-header, return, redirect...
- `replies`: the responses rules build (deny, return, redirect), HAProxy's bytes
- `actions`: the action registry per rule set and the generic actions
- `context`: what parsers may consult while compiling (tables, proxy, ACLs)
- `compile`: ``compile_rules(config, tables)`` -> `ProxyRules` per proxy, ``check_rules``
- `features`: the one list of modules outside rules that register keywords (stick...)
- `txn`: `Session`, `Txn`, `Reply` (the contract with the HTTP/TCP adapters)
"""
