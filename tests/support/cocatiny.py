"""A tiny CoCa (random weights) registered through open_clip: the mechanics of captioning, fast.

Random weights write gibberish, so tests built on it check mechanics only (token decoding,
reranking order, storage, exit codes), never the words. A random model almost never picks
end-of-text (one token in 49408), so every caption runs to the length limit, whose last slot is
forced; ``eot_logit`` gives end-of-text a constant logit boost, so captions also end on their
own, after a number of tokens that varies with the photo, the prefix and the decoding method.
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


EOT = 49407  # CLIP BPE end of text


def make_tiny_coca(directory: Path, seed: int = 0, eot_logit: float = 0.0) -> tuple[Path, Path]:
    """Write (config.json, checkpoint.pt) of a randomly initialized tiny CoCa.

    ``eot_logit``: a constant added to end-of-text's logit at every position (0: none). The
    decoder's logits are ``ln_final(y) @ text_projection``; channel 0 of ``ln_final`` is pinned
    to 1 (weight 0, bias 1) and row 0 of the projection is zero except ``eot_logit`` at EOT, so
    that channel is a pure logit bias inside the stock open_clip architecture: the checkpoint
    still loads, and the incremental decoder runs, exactly as a real one does.
    """
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
        if eot_logit:
            ln = model.text_decoder.ln_final
            ln.weight[0], ln.bias[0] = 0.0, 1.0
            proj[0] = 0.0
            proj[0, EOT] = eot_logit
    weights = directory / "tinycoca.pt"
    torch.save(model.state_dict(), weights)
    return cfg, weights
