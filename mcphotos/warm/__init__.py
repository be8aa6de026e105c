"""The warm model: a running ``mcphotos serve`` answers the CLI's queries over a Unix socket.

While ``mcphotos serve`` runs, its :class:`~mcphotos.warm.server.WarmServer` listens on
``<user runtime dir>/mcphotos/warm-<store id>.sock`` (directory 0700, socket 0600). A CLI
process of the same store and model identity then encodes its texts and photos through it
(``find``, ``tag``, ``score``, ``embed``), or has the server run a whole text ``find``, so it
never opens a model, the search index or the ONNX sessions itself. When no server answers (no
socket, the stale socket of a dead server, another store or identity, a timeout) the client
says nothing and the command runs on its own engine, with the same results.

- ``paths.py``: where the socket lives (the runtime dir, or a private fallback) and the store id;
- ``protocol.py``: one JSON line per request and per answer, arrays as base64;
- ``server.py``: the server's threads and its operations;
- ``client.py``: the client, its checks, and the encoder that falls back to the local one.
"""
