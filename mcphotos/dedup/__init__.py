"""Duplicates: perceptual signatures, the catalog, finding groups, choosing keepers, acting on them."""
