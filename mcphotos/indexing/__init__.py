"""Indexing, in the order of the flow: walk, hash, decode (imaging, workers), embed and store (indexer)."""
