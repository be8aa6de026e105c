"""Incremental (key/value-cached) decoding over open_clip's CoCa modules.

open_clip's CoCa forward pass recomputes the whole prefix at every step, and every row of a
batch re-projects the same image tokens in each cross-attention layer. For coca_ViT-L-14 the
cross-attention keys/values alone are ~7 GFLOP per row and step. This module runs the same
layers one token at a time with the model's own weights:

- the text tower's and the decoder's self-attention keep per-layer key/value caches;
- the image tokens' cross-attention keys/values are computed once per photo and shared by
  every beam or sample.

It reads open_clip's modules (``ResidualAttentionBlock``: ``ln_1``, ``attn``, ``ls_1``,
``ln_2``, ``mlp``, ``ls_2``, ``ln_1_kv``) and checks the structure up front; a model that
does not fit (an HF text tower, say) makes :func:`supports` return False and the caller falls
back to full recomputation. The tests check both paths give the same log-probabilities.
"""

from __future__ import annotations

from typing import Any


def supports(model: Any) -> bool:
    text: Any = getattr(model, "text", None)
    dec: Any = getattr(model, "text_decoder", None)
    try:
        blocks = [*text.transformer.resblocks, *dec.resblocks, *dec.cross_attn]
        return (
            getattr(text, "cls_emb", None) is not None
            and text.transformer.batch_first and dec.batch_first
            and all(hasattr(b, "attn") and hasattr(b.attn, "in_proj_weight") and b.attn.in_proj_weight is not None
                    for b in blocks)
            and all(hasattr(b, "ln_1_kv") for b in dec.cross_attn)
        )
    except AttributeError:
        return False


def _split_heads(x: Any, heads: int) -> Any:
    b, n, w = x.shape
    return x.view(b, n, heads, w // heads).transpose(1, 2)  # (B, H, N, d)


def _project(attn: Any, x: Any, part: slice) -> Any:
    import torch.nn.functional as F

    w = attn.in_proj_weight[part]
    b = attn.in_proj_bias[part] if attn.in_proj_bias is not None else None
    return F.linear(x, w, b)


class IncrementalDecoder:
    """Feeds one token per row per step; ``reorder`` follows beams as they are kept or dropped."""

    def __init__(self, model: Any, image_embs: Any) -> None:
        self.model = model
        self.text = model.text
        self.dec = model.text_decoder
        self.pos = 0
        n_text = len(self.text.transformer.resblocks)
        n_dec = len(self.dec.resblocks)
        self.text_kv: list[tuple[Any, Any] | None] = [None] * n_text
        self.self_kv: list[tuple[Any, Any] | None] = [None] * n_dec
        # Image keys/values, once per photo, shared by every row: (1, H, N, d).
        self.cross_kv = []
        for block in self.dec.cross_attn:
            width = block.attn.embed_dim
            kv_in = block.ln_1_kv(image_embs[:1])
            k = _project(block.attn, kv_in, slice(width, 2 * width))
            v = _project(block.attn, kv_in, slice(2 * width, 3 * width))
            heads = block.attn.num_heads
            self.cross_kv.append((_split_heads(k, heads), _split_heads(v, heads)))

    def _self_attention(self, block: Any, x: Any, cache: tuple[Any, Any] | None) -> tuple[Any, tuple[Any, Any]]:
        import torch
        import torch.nn.functional as F

        attn = block.attn
        heads = attn.num_heads
        h = block.ln_1(x)
        q, k, v = (_split_heads(t, heads) for t in F.linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1))
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        # The newest token may see every earlier one: the causal mask of a full pass, one row at a time.
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(x.shape)
        x = x + block.ls_1(attn.out_proj(out))
        x = x + block.ls_2(block.mlp(block.ln_2(x)))
        return x, (k, v)

    def _cross_attention(self, block: Any, x: Any, kv: tuple[Any, Any]) -> Any:
        import torch.nn.functional as F

        attn = block.attn
        width = attn.embed_dim
        q = _split_heads(_project(attn, block.ln_1(x), slice(0, width)), attn.num_heads)
        k, v = kv
        out = F.scaled_dot_product_attention(q, k.expand(q.shape[0], -1, -1, -1), v.expand(q.shape[0], -1, -1, -1))
        out = out.transpose(1, 2).reshape(x.shape)
        x = x + block.ls_1(attn.out_proj(out))
        return x + block.ls_2(block.mlp(block.ln_2(x)))

    def step(self, tokens: Any) -> Any:
        """Feed ``tokens`` (B,) at the next position; return next-token logits (B, vocab)."""
        text = self.text
        cast = text.transformer.get_cast_dtype()
        x = text.token_embedding(tokens[:, None]).to(cast) + text.positional_embedding[self.pos].to(cast)
        for i, block in enumerate(text.transformer.resblocks):
            x, self.text_kv[i] = self._self_attention(block, x, self.text_kv[i])
        y = x  # the text tower's token outputs (before ln_final), as CoCa feeds its decoder
        for i, (block, cross) in enumerate(zip(self.dec.resblocks, self.dec.cross_attn, strict=True)):
            y, self.self_kv[i] = self._self_attention(block, y, self.self_kv[i])
            y = self._cross_attention(cross, y, self.cross_kv[i])
        out = self.dec.ln_final(y)
        if self.dec.text_projection is not None:
            out = out @ self.dec.text_projection
        self.pos += 1
        return out[:, -1]

    def reorder(self, rows: Any) -> None:
        """Keep cache rows ``rows`` (a LongTensor of indices, repeats allowed), in that order."""
        self.text_kv = [None if c is None else (c[0][rows], c[1][rows]) for c in self.text_kv]
        self.self_kv = [None if c is None else (c[0][rows], c[1][rows]) for c in self.self_kv]
