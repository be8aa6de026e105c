"""Merging stores by content hash: ``sources`` (what is read), ``merger`` (what is written)."""
