"""A tiny CoCa (random weights) registered through open_clip: the mechanics of captioning, fast.

Random weights write gibberish, so tests built on it check mechanics only (token decoding,
reranking order, storage, exit codes), never the words.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_COCA_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8,
                   "attentional_pool": True, "attn_pooler_heads": 2, "attn_pooler_queries": 8,
                   "output_tokens": True},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                 "embed_cls": True, "output_tokens": True},
    "multimodal_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                       "attn_pooler_heads": 2},
    "custom_text": True,
}


def make_tiny_coca(directory: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write (config.json, checkpoint.pt) of a randomly initialized tiny CoCa."""
    import open_clip
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / "tinycoca.json"
    cfg.write_text(json.dumps(TINY_COCA_CFG))
    open_clip.add_model_config(cfg)
    torch.manual_seed(seed)
    model = open_clip.create_model("tinycoca", pretrained=None)
    with torch.no_grad():
        # open_clip leaves the decoder's output projection as torch.empty: give it real random
        # values, so next-token distributions have no ties and decoding paths are distinct.
        proj = model.text_decoder.text_projection
        proj.normal_(std=proj.shape[0] ** -0.5 * 4)
    weights = directory / "tinycoca.pt"
    torch.save(model.state_dict(), weights)
    return cfg, weights
