"""The subnet as an OpenAI-compatible API (``sn1 gateway``).

A validator operator runs it with their hotkey: API keys with limits in front,
miners from the metagraph behind, each answer streamed from exactly one miner.

- ``db``: the gateway's SQLite file (keys and records).
- ``keys``: API keys, stored as sha256 hashes.
- ``limits``: requests per minute and tokens per day, per key.
- ``request``: what a client may send (strict: unknown fields are refused).
- ``routing``: which miners to try, in which order.
- ``upstream``: one signed, streamed request to one miner.
- ``relay``: failover before the first chunk, then one miner's stream to the client.
- ``records``: a row per organic request, written off the event loop.
- ``metrics``: Prometheus counters and histograms.
- ``store``: the state behind one interface: SQLite and memory (one process, the default), or
  ``store_redis``: Redis (``--gateway.redis_url``), shared by any number of replicas.
- ``app``: the HTTP routes; ``page``: the chat page; ``cli``: ``sn1 gateway``.

It never imports the validator or the miner: it speaks sn1.protocol and reads sn1.chain.
"""
