"""The suite never sees the user's own state: mcphotos home and Hugging Face cache are per test."""

from __future__ import annotations

import os
from pathlib import Path

from mcphotos.errors import ModelLoadError
from mcphotos.models.clip import load_engine
from mcphotos.models.registry import resolve_model


def test_hf_cache_and_home_are_private_to_the_test(tmp_path: Path) -> None:
    import huggingface_hub.constants as hc

    for value in (hc.HF_HUB_CACHE, hc.HF_HOME, os.environ["HF_HOME"], os.environ["HF_HUB_CACHE"],
                  os.environ["MCPHOTOS_HOME"]):
        assert Path(value).is_relative_to(tmp_path), value
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_the_default_model_is_not_cached_here_whatever_the_user_downloaded() -> None:
    # `make index` fills the user's real HF cache with MobileCLIP2-S0; a test must still see
    # an empty cache, so "not cached, offline" is one clear error.
    try:
        load_engine(resolve_model("MobileCLIP2-S0"))
    except ModelLoadError as e:
        assert "not in the Hugging Face cache" in str(e)
    else:
        raise AssertionError("loaded the default model from a cache the test should not see")
