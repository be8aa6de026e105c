"""Captions: scoring photo-caption pairs and writing captions with CoCa."""
