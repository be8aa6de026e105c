"""Caption generation with Apple's MobileCLIP2 CoCa captioners, reranked by MobileCLIP2.

Why our own decoding loop: open_clip 3.3's ``CoCa.generate`` imports its logits processors and
beam scorer from ``transformers`` and breaks with transformers >= 4.56 (BeamSearchScorer moved).
Pinning an old transformers would drag a large, fast-moving dependency into every install for
~150 lines of logic. So this module drives open_clip's CoCa forward pass itself
(``model._encode_image`` once, then ``model._encode_text`` + ``model.text_decoder`` per step)
with plain torch: greedy, top-p (nucleus) sampling and beam search.

Captions are stored per content hash, captioner and decoding settings (table ``captions``),
so asking again, or for a renamed copy, is free and loads no model.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ImageError, ModelLoadError, UsageError
from .imaging import PreprocessSpec
from .store import Store

log = logging.getLogger(__name__)

ARCH = "coca_ViT-L-14"  # the open_clip architecture of every MobileCLIP2 CoCa checkpoint
HUB_PREFIX = "apple/mobileclip2_coca_dfn2b_s13b_"
DEFAULT_CAPTIONER = "mscoco38k"
SOT, EOT = 49406, 49407  # CLIP BPE start/end of text

# Short name -> hub repo suffix. All are CoCa ViT-L/14 pretrained on DFN-2B; the name says what
# it was fine-tuned on, hence the style of caption it writes.
CAPTIONERS: dict[str, str] = {
    "mscoco38k": "mscoco38k_s12m_context77",  # MSCOCO: one short sentence per photo (default)
    "recap-coco-30k": "recap-coco-30k_s12m_context77",  # re-captioned COCO: a longer sentence
    "gbc1m-short": "gbc1m-short_context77",  # graph-based captions, short form
    "dci-short": "dci-short_s12m_context77",  # Densely Captioned Images, short summaries
    "dci-complete": "dci-complete_s12m_context77",
    "dci-extended": "dci-extended_s12m_context77",
    "docci": "docci_s12m_context77",  # DOCCI: detailed descriptions
    "dfn2b": "context77",  # pretrained only, no caption fine-tuning
}

METHODS = ("beam", "top-p", "greedy")


@dataclass(frozen=True)
class CaptionerSpec:
    """Which CoCa to use: a hub repo, or an architecture plus a local checkpoint."""

    name: str  # a CAPTIONERS key, an open_clip CoCa model name, or a config .json path
    repo: str | None = None  # Hugging Face repo to download from
    arch: str = ARCH  # open_clip model name or config .json path
    weights: str | None = None  # local checkpoint

    def identity(self, home: Path) -> str:
        """Stable id for stored captions: what produced them, not where the file lives."""
        if self.weights:
            from .config import _file_digest

            return f"{Path(self.arch).stem}@w{_file_digest(self.weights, home)[:12]}"
        return self.repo or self.arch


def resolve_captioner(name: str | None = None, weights: str | None = None) -> CaptionerSpec:
    """``--captioner`` and ``--weights`` to a :class:`CaptionerSpec`."""
    name = (name or DEFAULT_CAPTIONER).strip()
    if weights is not None:
        weights = str(Path(weights).expanduser())
        if not Path(weights).is_file():
            raise UsageError(f"weights file not found: {weights}", "pass the path of a CoCa checkpoint")
    if name.lower().endswith(".json"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise UsageError(f"captioner config not found: {name}")
        if weights is None:
            raise UsageError("a captioner config .json needs --weights FILE")
        return CaptionerSpec(name=str(path.resolve()), arch=str(path.resolve()), weights=weights)
    key = name.lower()
    if key.startswith(HUB_PREFIX):
        key = key[len(HUB_PREFIX):]
        key = next((k for k, v in CAPTIONERS.items() if v == key), key)
    if key in CAPTIONERS:
        repo = HUB_PREFIX + CAPTIONERS[key]
        return CaptionerSpec(name=key, repo=None if weights else repo, weights=weights)
    if name.startswith("coca_"):  # any open_clip CoCa architecture with a local checkpoint
        if weights is None:
            raise UsageError(f"captioner '{name}' needs --weights FILE")
        return CaptionerSpec(name=name, arch=name, weights=weights)
    raise UsageError(f"unknown captioner '{name}'",
                     f"use one of {', '.join(CAPTIONERS)}, a CoCa config .json, or coca_ViT-L-14 with --weights")


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
        return cls(model, tokenizer, pre, device, precision, mean, std)

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
        for step in range(d.max_tokens):
            logp = self._mask(self.next_logprobs(image_embs, rows), step, d)
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
        result = [(finished[i], total[i] / (len(finished[i]) - 1)) for i in range(n) if i in finished]
        return sorted(result, key=lambda r: -r[1])

    def _beam(self, image_embs: Any, d: Decoding) -> list[tuple[list[int], float]]:
        """Beam search with length-normalized scores (sum of log-probs / length)."""
        import torch

        width = d.width
        rows = torch.full((1, 1), SOT, dtype=torch.long, device=self.device)
        scores = torch.zeros(1, device=self.device)
        done: list[tuple[list[int], float]] = []
        for step in range(d.max_tokens):
            logp = self._mask(self.next_logprobs(image_embs, rows), step, d)
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
            sel = torch.tensor(keep_rows, device=self.device)
            rows = torch.cat([rows[sel], torch.tensor(keep_tokens, device=self.device)[:, None]], dim=1)
            scores = torch.tensor(keep_scores, device=self.device)
        done.sort(key=lambda r: -r[1])
        return done


def _nucleus(probs: Any, top_p: float, gen: Any) -> Any:
    """Sample one token per row from the smallest set whose probability reaches ``top_p``."""
    import torch

    p = probs.float().cpu()
    sorted_p, order = p.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(dim=-1) - sorted_p
    sorted_p[before >= top_p] = 0.0  # the first token is always kept (before == 0)
    pick = torch.multinomial(sorted_p, 1, generator=gen)
    return order.gather(1, pick)[:, 0]


def load_captioner(spec: CaptionerSpec, device: str | None = None, precision: str = "auto",
                   on_status: Callable[[str], None] | None = None) -> Captioner:
    """Build the CoCa model, load its weights (local file or hub download), ready to generate."""
    from .engine import _import_open_clip, _read_config_file, _register_config_file, choose_device, choose_precision

    open_clip = _import_open_clip()
    arch = _register_config_file(open_clip, spec.arch) if spec.arch.lower().endswith(".json") else spec.arch
    weights = spec.weights
    if weights is None and spec.repo:
        config, weights = hub_files(spec.repo, on_status)
        if config is not None:
            try:
                model_cfg, _ = _read_config_file(config)
                if "multimodal_cfg" in model_cfg:  # context-128/256 variants ship their own config
                    arch = _register_config_file(open_clip, config)
            except ModelLoadError:
                pass
    if on_status:
        on_status(f"loading captioner {spec.name}")
    try:
        model = open_clip.create_model(arch, pretrained=weights, device="cpu", weights_only=True,
                                       require_pretrained=weights is not None)
    except Exception as e:  # open_clip raises bare RuntimeError/KeyError for mismatches
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"cannot load captioner {spec.name} from {weights or arch}: {first}",
                             "check that the file is a CoCa checkpoint of this architecture") from None
    if not hasattr(model, "text_decoder"):
        raise ModelLoadError(f"{spec.name} is not a CoCa model (no text decoder)")
    tokenizer = open_clip.get_tokenizer(arch)
    dev = choose_device(device)
    return Captioner.from_model(model, tokenizer, dev, choose_precision(dev, precision))


def hub_files(repo: str, on_status: Callable[[str], None] | None = None) -> tuple[str | None, str]:
    """(config, checkpoint) of ``repo``: from the HF cache if there, else downloaded once."""
    try:
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    except ImportError:  # pragma: no cover - open_clip depends on it
        raise ModelLoadError("huggingface_hub is not installed", "pass a local checkpoint with --weights FILE") \
            from None
    patterns = ["*.json", "*.safetensors", "*.bin", "*.pt", "*.pth"]
    try:
        cached = snapshot_download(repo, allow_patterns=patterns, local_files_only=True)
        found = _pick_files(os.listdir(cached))
        if found[1] is not None:
            return (os.path.join(cached, found[0]) if found[0] else None), os.path.join(cached, found[1])
    except Exception:
        pass  # not cached (fully): download below
    hint = f"download it once while online, or pass a local checkpoint with --weights FILE (from hf.co/{repo})"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelLoadError(f"captioner {repo} is not in the Hugging Face cache and HF_HUB_OFFLINE is set", hint)
    try:
        config, checkpoint = _pick_files(HfApi().list_repo_files(repo))
        if checkpoint is None:
            raise ModelLoadError(f"no checkpoint file in {repo}", hint)
        if on_status:
            on_status(f"downloading {repo}/{checkpoint} (once; about 2.5 GB)")
        weights = hf_hub_download(repo, checkpoint)
        cfg = hf_hub_download(repo, config) if config else None
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"cannot download captioner {repo}: {str(e).strip().splitlines()[0][:200]}", hint) \
            from None
    return cfg, weights


def _pick_files(names: Iterable[str]) -> tuple[str | None, str | None]:
    names = [n for n in names if "/" not in n]
    ranked = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    checkpoint = next((n for n in ranked if n in names), None)
    for ext in (".safetensors", ".pt", ".pth", ".bin"):
        checkpoint = checkpoint or next((n for n in sorted(names) if n.endswith(ext)), None)
    config = next((n for n in ("open_clip_config.json", "config.json") if n in names), None)
    return config, checkpoint


# -- storage and the whole pipeline --------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    rank: int  # 1 = best by MobileCLIP2
    text: str
    cosine: float
    clipscore: float
    logprob: float | None  # the captioner's mean token log-probability


@dataclass(frozen=True)
class CaptionResult:
    path: str
    hash: str
    captioner: str
    candidates: list[Candidate]
    cached: bool  # read from the store: no model ran

    @property
    def best(self) -> Candidate:
        return self.candidates[0]


def stored_captions(store: Store, digest: str, captioner: str, method: str) -> list[Candidate] | None:
    rows = store.conn.execute(
        "SELECT rank, text, cosine, logprob FROM captions WHERE hash = ? AND captioner = ? AND method = ? "
        "ORDER BY rank", (digest, captioner, method)).fetchall()
    if not rows:
        return None
    from .scoring import clip_score

    return [Candidate(r, t, float(c), clip_score(c), lp) for r, t, c, lp in rows]


def save_captions(store: Store, digest: str, captioner: str, method: str, candidates: Sequence[Candidate]) -> None:
    now = time.time()
    with store.transaction():
        store.conn.execute("DELETE FROM captions WHERE hash = ? AND captioner = ? AND method = ?",
                           (digest, captioner, method))
        store.conn.executemany(
            "INSERT INTO captions(hash, captioner, method, rank, text, cosine, logprob, created_at) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
            [(digest, captioner, method, c.rank, c.text, c.cosine, c.logprob, now) for c in candidates])


def rerank(scorer: Any, path: str, generated: Sequence[Generated]) -> list[Candidate]:
    """Order candidates by MobileCLIP2 cosine with the photo (ties: the captioner's likelihood)."""
    from .scoring import PairError, clip_score

    photo = scorer.photo_vectors([path])[path]
    if isinstance(photo, PairError):
        raise ImageError(photo.reason)
    cos = scorer.text_vectors([g.text for g in generated]) @ photo.vector
    order = sorted(range(len(generated)), key=lambda i: (-float(cos[i]), -generated[i].logprob))
    return [Candidate(rank + 1, generated[i].text, float(cos[i]), clip_score(cos[i]), generated[i].logprob)
            for rank, i in enumerate(order)]


ProgressCallback = Callable[[int, int], None]


def caption_photos(lib: Any, paths: Sequence[str], spec: CaptionerSpec, decoding: Decoding,
                   load: Callable[[], Captioner], refresh: bool = False,
                   on_progress: ProgressCallback | None = None,
                   on_skip: Callable[[str, str], None] | None = None) -> Iterator[CaptionResult]:
    """Caption each photo (stored results first), rerank with MobileCLIP2, store, yield in order.

    ``load`` builds the captioner; it is called only if some photo has no stored caption.
    """
    from .hashing import hash_bytes
    from .imaging import decode_for_model
    from .scoring import Scorer, _read_photo

    decoding.check()
    store = lib.store()
    scorer = Scorer(lib)
    captioner_id = spec.identity(lib.home)
    method = decoding.key()
    captioner: Captioner | None = None
    for done, path in enumerate(paths):
        try:
            data = _read_photo(path)
            digest = hash_bytes(data)
            stored = None if refresh else stored_captions(store, digest, captioner_id, method)
            if stored:
                yield CaptionResult(path, digest, captioner_id, stored, True)
                continue
            if captioner is None:
                captioner = load()
            pixels = decode_for_model(data, captioner.preprocess).pixels
            generated = captioner.generate(pixels, decoding)
            if not generated:
                raise ImageError("the captioner produced no text")
            candidates = rerank(scorer, path, generated)
            save_captions(store, digest, captioner_id, method, candidates)
            yield CaptionResult(path, digest, captioner_id, candidates, False)
        except ImageError as e:
            if on_skip:
                on_skip(path, e.message)
        finally:
            if on_progress:
                on_progress(done + 1, len(paths))
