"""Sidecars and embedded metadata: XMP documents and files, EXIF/IPTC/XMP reading."""
