"""Test helpers: the tiny CLIP, fakes, the bad-file zoo, scenes, photo makers."""
