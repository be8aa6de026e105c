"""Zero-shot tagging: label files (and the shipped sets) and the tagger."""
