"""Caption generation with Apple's MobileCLIP2 CoCa captioners: the decoding loop.

Why our own decoding loop: open_clip 3.3's ``CoCa.generate`` imports its logits processors and
beam scorer from ``transformers`` and breaks with transformers >= 4.56 (BeamSearchScorer moved).
Pinning an old transformers would drag a large, fast-moving dependency into every install for
~150 lines of logic. So this module drives open_clip's CoCa forward pass itself
(``model._encode_image`` once, then the text tower + ``model.text_decoder`` per step, with
key/value caches from :mod:`mcphotos.models.cocadecode`) in plain torch: greedy, top-p (nucleus)
sampling and beam search. Which captioner, and where its weights come from: :mod:`mcphotos.models.coca`; storing and
reranking captions: :mod:`mcphotos.captions.captioning`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mcphotos.errors import UsageError
from mcphotos.indexing.preprocess_spec import PreprocessSpec

log = logging.getLogger(__name__)

SOT, EOT = 49406, 49407  # CLIP BPE start/end of text
METHODS = ("beam", "top-p", "greedy")

# -- decoding settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoding:
    method: str = "beam"  # "beam", "top-p" or "greedy"
    candidates: int = 1  # captions returned (then reranked by MobileCLIP2)
    max_tokens: int = 30  # generated tokens, end-of-text included
    min_tokens: int = 5  # no end-of-text before this many tokens
    top_p: float = 0.9
    temperature: float = 1.0
    beams: int = 0  # beam width; 0 means max(candidates, 4)
    seed: int = 0  # top-p sampling is reproducible

    def check(self) -> Decoding:
        if self.method not in METHODS:
            raise UsageError(f"unknown method '{self.method}'", f"use one of {', '.join(METHODS)}")
        if self.candidates < 1 or self.candidates > 64:
            raise UsageError("--candidates must be between 1 and 64")
        if self.method == "greedy" and self.candidates > 1:
            raise UsageError("greedy decoding yields one caption", "use --method beam or top-p for candidates")
        if not 0.0 < self.top_p <= 1.0:
            raise UsageError("--top-p must be in (0, 1]")
        if self.max_tokens < 2 or self.min_tokens >= self.max_tokens:
            raise UsageError("need 0 <= min tokens < max tokens")
        return self

    @property
    def width(self) -> int:
        return max(self.beams or 4, self.candidates)

    def key(self) -> str:
        """The settings that change the output: part of the storage key."""
        base = f"{self.method}:n{self.candidates}:len{self.min_tokens}-{self.max_tokens}"
        if self.method == "beam":
            return f"{base}:w{self.width}"
        if self.method == "top-p":
            return f"{base}:p{self.top_p:g}:t{self.temperature:g}:s{self.seed}"
        return base


@dataclass(frozen=True)
class Generated:
    text: str
    tokens: tuple[int, ...]
    logprob: float  # mean log-probability per token under the captioner


# -- text --------------------------------------------------------------------------------------

_SPACE_BEFORE = re.compile(r"\s+([,.!?;:%)])")
_CONTRACTION = re.compile(r"\s+'\s*(s|t|re|ve|m|ll|d)\b")


def decode_tokens(tokenizer: Any, ids: Iterable[int]) -> str:
    """Token ids to a clean caption: between start- and end-of-text, BPE spacing undone."""
    body: list[int] = []
    for i in ids:
        i = int(i)
        if i == SOT:
            body = []
            continue
        if i == EOT:
            break
        body.append(i)
    text = tokenizer.decode(body) if body else ""
    text = _SPACE_BEFORE.sub(r"\1", " ".join(text.split()))
    text = _CONTRACTION.sub(r"'\1", text)
    text = re.sub(r"(\w) ' (\w)", r"\1'\2", text)  # o ' clock -> o'clock
    text = re.sub(r"\(\s+", "(", text).strip()
    # One closing period is the captioners' habit, not content (Apple's recipe drops it too).
    return text[:-1].rstrip() if text.endswith(".") and not text.endswith("..") else text


# -- the model ---------------------------------------------------------------------------------


@dataclass
class Captioner:
    """A loaded CoCa model. ``generate`` takes model-ready uint8 pixels (H, W, 3)."""

    model: Any
    tokenizer: Any
    preprocess: PreprocessSpec
    device: str = "cpu"
    precision: str = "fp32"
    incremental: bool = True  # key/value-cached decoding (cocadecode); False recomputes every prefix
    _mean: Any = field(default=None, repr=False)
    _std: Any = field(default=None, repr=False)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, device: str = "cpu", precision: str = "fp32") -> Captioner:
        import torch

        cfg = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
        pre = PreprocessSpec.from_dict({"size": cfg.get("size", model.visual.image_size), **cfg})
        model = model.eval().to(device)
        mean = torch.tensor(pre.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(pre.std, device=device).view(1, 3, 1, 1)
        return cls(model, tokenizer, pre, device, precision, True, mean, std)

    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.split(":")[0], dtype=dtype)

    def generate(self, pixels: np.ndarray, decoding: Decoding) -> list[Generated]:
        """Candidate captions for one photo, best (by the captioner's own likelihood) first."""
        import torch

        decoding.check()
        limit = int(getattr(self.model, "context_length", decoding.max_tokens))
        if decoding.max_tokens > limit:  # positions beyond the text context do not exist
            decoding = replace(decoding, max_tokens=limit, min_tokens=min(decoding.min_tokens, limit - 1))
        with torch.inference_mode(), self._autocast():
            x = torch.from_numpy(np.array(pixels, dtype=np.uint8)[None]).to(self.device)
            x = (x.permute(0, 3, 1, 2).float().div_(255.0) - self._mean) / self._std
            _, image_embs = self.model._encode_image(x)
            if decoding.method == "beam":
                seqs = self._beam(image_embs, decoding)
            else:
                seqs = self._sample(image_embs, decoding)
        out: list[Generated] = []
        seen: set[str] = set()
        for tokens, logprob in seqs:
            text = decode_tokens(self.tokenizer, tokens)
            if text and text not in seen:  # two token paths can spell the same words
                seen.add(text)
                out.append(Generated(text, tuple(tokens), logprob))
        return out[:decoding.candidates]

    def _stepper(self, image_embs: Any) -> _Stepper:
        from mcphotos.models.cocadecode import IncrementalDecoder, supports

        inc = IncrementalDecoder(self.model, image_embs) if self.incremental and supports(self.model) else None
        return _Stepper(self, image_embs, inc)

    def next_logprobs(self, image_embs: Any, tokens: Any) -> Any:
        """Log-probabilities of the next token for each row of ``tokens`` (all the same length)."""
        import torch

        _, token_embs = self.model._encode_text(tokens)
        embs = image_embs.expand(tokens.shape[0], -1, -1) if image_embs.shape[0] == 1 else image_embs
        logits = self.model.text_decoder(embs, token_embs)[:, -1].float()
        return torch.log_softmax(logits, dim=-1)

    def _mask(self, logp: Any, step: int, decoding: Decoding) -> Any:
        logp[:, SOT] = float("-inf")
        # The text tower masks the pad id (0, which spells "!") as padding: never generate it.
        logp[:, int(getattr(self.model, "pad_id", 0))] = float("-inf")
        if step < decoding.min_tokens:
            logp[:, EOT] = float("-inf")
        if step == decoding.max_tokens - 1:  # the last slot can only end the caption
            logp.fill_(float("-inf"))
            logp[:, EOT] = 0.0
        return logp

    def _sample(self, image_embs: Any, d: Decoding) -> list[tuple[list[int], float]]:
        """Greedy (one row) or top-p sampling (``candidates`` rows), all rows in one batch."""
        import torch

        n = 1 if d.method == "greedy" else d.candidates
        gen = torch.Generator(device="cpu").manual_seed(d.seed)
        rows = torch.full((n, 1), SOT, dtype=torch.long, device=self.device)
        alive = list(range(n))
        total = [0.0] * n
        finished: dict[int, list[int]] = {}
        stepper = self._stepper(image_embs)
        for step in range(d.max_tokens):
            logp = self._mask(stepper.logprobs(rows), step, d)
            if d.method == "greedy":
                choice = logp.argmax(dim=-1)
            else:
                probs = torch.softmax(logp / d.temperature, dim=-1)
                choice = _nucleus(probs, d.top_p, gen).to(self.device)
            picked = logp.gather(1, choice[:, None])[:, 0]
            keep: list[int] = []
            for row, (idx, tok) in enumerate(zip(alive, choice.tolist(), strict=True)):
                total[idx] += float(picked[row])
                if tok == EOT:
                    finished[idx] = [*rows[row].tolist(), EOT]
                else:
                    keep.append(row)
            rows = torch.cat([rows, choice[:, None]], dim=1)[keep]
            alive = [alive[r] for r in keep]
            if not alive:
                break
            stepper.reorder(torch.tensor(keep, dtype=torch.long, device=self.device))
        result = [(finished[i], total[i] / (len(finished[i]) - 1)) for i in range(n) if i in finished]
        return sorted(result, key=lambda r: -r[1])

    def _beam(self, image_embs: Any, d: Decoding) -> list[tuple[list[int], float]]:
        """Beam search with length-normalized scores (sum of log-probs / length)."""
        import torch

        width = d.width
        rows = torch.full((1, 1), SOT, dtype=torch.long, device=self.device)
        scores = torch.zeros(1, device=self.device)
        done: list[tuple[list[int], float]] = []
        stepper = self._stepper(image_embs)
        for step in range(d.max_tokens):
            logp = self._mask(stepper.logprobs(rows), step, d)
            vocab = logp.shape[-1]
            total = (scores[:, None] + logp).flatten()
            best, idx = total.topk(min(2 * width, int(torch.isfinite(total).sum())))
            keep_rows: list[int] = []
            keep_tokens: list[int] = []
            keep_scores: list[float] = []
            for score, flat in zip(best.tolist(), idx.tolist(), strict=True):
                beam, tok = divmod(flat, vocab)
                if tok == EOT:
                    seq = [*rows[beam].tolist(), EOT]
                    done.append((seq, score / (len(seq) - 1)))
                else:
                    keep_rows.append(beam)
                    keep_tokens.append(tok)
                    keep_scores.append(score)
                if len(keep_rows) == width:
                    break
            if not keep_rows:
                break
            # Stop once no open beam can beat the width-th finished one (scores only fall).
            done.sort(key=lambda r: -r[1])
            length = rows.shape[1]
            if len(done) >= width and max(keep_scores) / length <= done[width - 1][1]:
                break
            sel = torch.tensor(keep_rows, dtype=torch.long, device=self.device)
            rows = torch.cat([rows[sel], torch.tensor(keep_tokens, device=self.device)[:, None]], dim=1)
            stepper.reorder(sel)
            scores = torch.tensor(keep_scores, device=self.device)
        done.sort(key=lambda r: -r[1])
        return done


class _Stepper:
    """Next-token log-probabilities for growing rows: cached (incremental) or full recomputation."""

    def __init__(self, captioner: Captioner, image_embs: Any, incremental: Any) -> None:
        self.captioner = captioner
        self.image_embs = image_embs
        self.incremental = incremental

    def logprobs(self, rows: Any) -> Any:
        """``rows`` (B, L): every row's tokens so far; the cache has seen all but the last."""
        import torch

        if self.incremental is None:
            return self.captioner.next_logprobs(self.image_embs, rows)
        return torch.log_softmax(self.incremental.step(rows[:, -1]).float(), dim=-1)

    def reorder(self, keep: Any) -> None:
        if self.incremental is not None:
            self.incremental.reorder(keep)


def _nucleus(probs: Any, top_p: float, gen: Any) -> Any:
    """Sample one token per row from the smallest set whose probability reaches ``top_p``."""
    import torch

    p = probs.float().cpu()
    sorted_p, order = p.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(dim=-1) - sorted_p
    sorted_p[before >= top_p] = 0.0  # the first token is always kept (before == 0)
    pick = torch.multinomial(sorted_p, 1, generator=gen)
    return order.gather(1, pick)[:, 0]
