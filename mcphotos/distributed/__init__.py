"""Indexing beyond one machine with Ray Data (the optional extra ``mcphotos[ray]``).

``cluster`` connects (or starts a local runtime), ``recipes`` says how each actor builds its
encoder, ``pipeline`` is the Ray Data pipeline the indexer's remote stage consumes.
Nothing imports Ray at module level: without it, ``index --ray`` says one line.
"""
