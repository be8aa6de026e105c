"""Models: the registry of CLIP models and captioners, the CLIP engine, CoCa and its decoder."""
