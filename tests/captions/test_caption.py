"""`mcphotos caption`: decoding mechanics on a tiny random CoCa, reranking with the tiny CLIP,
storage per content hash, exit codes, and one run of the real CoCa architecture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mcphotos.captions.captioning import rerank
from mcphotos.cli import app
from mcphotos.indexing.imaging import decode_for_model
from mcphotos.library import Library
from mcphotos.models.coca import load_captioner, resolve_captioner
from mcphotos.models.cocagen import EOT, SOT, Captioner, Decoding, Generated, decode_tokens
from tests.support.cli import runner
from tests.support.cocatiny import make_tiny_coca
from tests.support.photos import shape_photo

# End-of-text's logit boost in the ending tiny CoCa: about the size of the best random logit of
# 49408 (std 4), so it wins at some steps and loses at others (see tests/cocatiny.py).
EOT_LOGIT = 20.0


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_coca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coca(tmp_path_factory.mktemp("coca"))


@pytest.fixture(scope="module")
def captioner(tiny_coca: tuple[Path, Path]) -> Captioner:
    cfg, weights = tiny_coca
    return load_captioner(resolve_captioner(str(cfg), str(weights)), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def ending_captioner(tmp_path_factory: pytest.TempPathFactory) -> Captioner:
    """The tiny CoCa with end-of-text boosted: captions end on their own, at varying lengths."""
    cfg, weights = make_tiny_coca(tmp_path_factory.mktemp("coca-eot"), eot_logit=EOT_LOGIT)
    return load_captioner(resolve_captioner(str(cfg), str(weights)), device="cpu", precision="fp32")


@pytest.fixture
def red_circle(tmp_path: Path) -> Path:
    return shape_photo(tmp_path / "pics" / "red_circle.png", "red", "circle", seed=3)


def test_token_decoding_round_trip(captioner: Captioner) -> None:
    for text in ("a dog on the beach", "a dog's ball, next to a red car", "two cats: one black, one white",
                 "it's 5 o'clock"):
        ids = captioner.tokenizer([text])[0].tolist()
        assert ids[0] == SOT and EOT in ids
        assert decode_tokens(captioner.tokenizer, ids) == text
    ids = captioner.tokenizer(["A Photo of a Bridge."])[0].tolist()
    assert decode_tokens(captioner.tokenizer, ids) == "a photo of a bridge"  # CLIP BPE is lowercase
    assert decode_tokens(captioner.tokenizer, [SOT, EOT, 320]) == ""


def _pixels(captioner: Captioner, path: Path) -> np.ndarray:
    return decode_for_model(path.read_bytes(), captioner.preprocess).pixels


def _teacher_forced_logprobs(captioner: Captioner, pixels: np.ndarray, tokens: tuple[int, ...]) -> list[float]:
    """Log-probability of each of ``tokens[1:]`` given the ones before, by one full forward pass of
    open_clip's CoCa (no cache, no masks: the model's own distribution)."""
    import torch

    x = torch.from_numpy(pixels[None].copy()).permute(0, 3, 1, 2).float() / 255.0
    x = (x - captioner._mean) / captioner._std
    text = torch.tensor([tokens])
    with torch.inference_mode():
        logits = captioner.model(x, text)["logits"]  # predicts tokens[1:]
    logp = torch.log_softmax(logits.float(), dim=-1)[0]
    return logp.gather(1, text[0, 1:, None])[:, 0].tolist()


@pytest.mark.parametrize("method", ["greedy", "beam", "top-p"])
def test_generation_mechanics(captioner: Captioner, ending_captioner: Captioner, red_circle: Path,
                              method: str) -> None:
    n = 1 if method == "greedy" else 3
    d = Decoding(method=method, candidates=n, max_tokens=10, min_tokens=3)
    photos = [red_circle, shape_photo(red_circle.parent / "blue_star.png", "blue", "star", seed=4)]
    checked = {"ended": 0, "forced": 0}
    for cap in (captioner, ending_captioner):
        for photo in photos:
            pixels = _pixels(cap, photo)
            out = cap.generate(pixels, d)
            assert 1 <= len(out) <= n and len({g.text for g in out}) == len(out)
            for g in out:
                assert g.tokens[0] == SOT and g.tokens[-1] == EOT and EOT not in g.tokens[1:-1]
                assert 3 + 2 <= len(g.tokens) <= 10 + 1  # min tokens before EOT, max tokens in all
                assert g.text == decode_tokens(cap.tokenizer, g.tokens)
                # The loop's incremental score is the mean log-probability of one teacher-forced pass
                # of the whole caption, end-of-text included, except that an end-of-text forced into
                # the last slot (max_tokens) is scored 0 by design.
                forced = len(g.tokens) == d.max_tokens + 1
                logps = _teacher_forced_logprobs(cap, pixels, g.tokens)
                expected = (sum(logps[:-1]) + (0.0 if forced else logps[-1])) / len(logps)
                assert g.logprob == pytest.approx(expected, abs=1e-4), (method, g.tokens)
                if forced:
                    checked["forced"] += 1
                elif -logps[-1] / len(logps) > 1e-3:  # scoring this end-of-text 0 would fail the check
                    checked["ended"] += 1
    # Both kinds of ending were checked: the plain tiny CoCa never picks end-of-text itself, the
    # boosted one does (and its end-of-text is scored by the model, not as a forced 0).
    assert checked["forced"] > 0 and checked["ended"] > 0, checked
    if method == "beam":
        for cap in (captioner, ending_captioner):
            pixels = _pixels(cap, red_circle)
            out = cap.generate(pixels, d)
            assert [g.logprob for g in out] == sorted((g.logprob for g in out), reverse=True)
            greedy = cap.generate(pixels, Decoding(method="greedy", max_tokens=10, min_tokens=3))[0]
            assert out[0].logprob >= greedy.logprob - 1e-6  # a beam never loses to greedy on its own score


def test_cached_decoding_equals_full_recomputation(captioner: Captioner, red_circle: Path) -> None:
    import dataclasses

    import torch

    from mcphotos.models.cocadecode import IncrementalDecoder, supports

    assert supports(captioner.model)
    pixels = _pixels(captioner, red_circle)
    x = torch.from_numpy(pixels[None].copy()).permute(0, 3, 1, 2).float() / 255.0
    x = (x - captioner._mean) / captioner._std
    prefix = torch.tensor([[SOT, 320, 1929, 525, 518, 2117], [SOT, 1125, 539, 320, 2368, 530]])
    with torch.inference_mode():
        _, embs = captioner.model._encode_image(x)
        inc = IncrementalDecoder(captioner.model, embs)
        for n in range(1, prefix.shape[1] + 1):
            cached = torch.log_softmax(inc.step(prefix[:, n - 1]).float(), -1)
            full = captioner.next_logprobs(embs, prefix[:, :n])
            assert torch.allclose(cached, full, atol=1e-4), n
        inc.reorder(torch.tensor([1, 1, 0]))  # beams are dropped and duplicated
        rows = prefix[[1, 1, 0]]
        nxt = torch.tensor([320, 525, 518])
        cached = torch.log_softmax(inc.step(nxt).float(), -1)
        full = captioner.next_logprobs(embs, torch.cat([rows, nxt[:, None]], 1))
        assert torch.allclose(cached, full, atol=1e-4)
    slow = dataclasses.replace(captioner, incremental=False)
    for d in (Decoding(method="beam", candidates=3, max_tokens=9, min_tokens=2),
              Decoding(method="top-p", candidates=3, max_tokens=9, min_tokens=2, seed=2)):
        a, b = captioner.generate(pixels, d), slow.generate(pixels, d)
        assert [g.tokens for g in a] == [g.tokens for g in b]
        assert [g.logprob for g in a] == pytest.approx([g.logprob for g in b], abs=1e-4)


def test_top_p_is_reproducible_by_seed(captioner: Captioner, red_circle: Path) -> None:
    pixels = _pixels(captioner, red_circle)
    a = captioner.generate(pixels, Decoding(method="top-p", candidates=4, max_tokens=8, min_tokens=2, seed=1))
    b = captioner.generate(pixels, Decoding(method="top-p", candidates=4, max_tokens=8, min_tokens=2, seed=1))
    assert [g.tokens for g in a] == [g.tokens for g in b]
    tight = captioner.generate(pixels, Decoding(method="top-p", candidates=3, max_tokens=8, min_tokens=2,
                                                top_p=1e-6, seed=5))
    greedy = captioner.generate(pixels, Decoding(method="greedy", max_tokens=8, min_tokens=2))
    assert [g.tokens for g in tight] == [greedy[0].tokens]  # a vanishing nucleus is greedy


def test_rerank_orders_by_mobileclip_score(red_circle: Path, tiny_clip: tuple[Path, Path]) -> None:
    cfg, weights = tiny_clip
    generated = [Generated("a blue star", (), -1.0), Generated("a red circle", (), -3.0),
                 Generated("a green square", (), -2.0)]
    with Library(model=str(cfg), weights=str(weights)) as lib:
        ranked = rerank(lib.scorer(), str(red_circle), generated)
    assert ranked[0].text == "a red circle"
    assert [c.rank for c in ranked] == [1, 2, 3]
    assert [c.cosine for c in ranked] == sorted((c.cosine for c in ranked), reverse=True)
    assert all(c.clipscore == pytest.approx(2.5 * max(c.cosine, 0)) for c in ranked)


def test_captions_are_stored_per_content_hash(tmp_path: Path, red_circle: Path, tiny_coca: tuple[Path, Path],
                                              tiny_clip: tuple[Path, Path]) -> None:
    cfg, weights = tiny_clip
    spec = resolve_captioner(str(tiny_coca[0]), str(tiny_coca[1]))
    d = Decoding(method="beam", candidates=2, max_tokens=8, min_tokens=2)
    loads = []

    def load() -> Captioner:
        loads.append(1)
        return load_captioner(spec, "cpu", "fp32")

    copy = tmp_path / "moved" / "renamed.png"
    copy.parent.mkdir()
    shutil.copy(red_circle, copy)
    with Library(model=str(cfg), weights=str(weights)) as lib:
        first = list(lib.caption([str(red_circle)], spec, d, load))
        again = list(lib.caption([str(copy)], spec, d, load))
        other = list(lib.caption([str(copy)], spec, Decoding(method="greedy", max_tokens=8, min_tokens=2),
                                    load))
    assert len(loads) == 2  # the copy was free; other settings are another question
    assert not first[0].cached and again[0].cached and not other[0].cached
    assert [(c.text, c.rank) for c in again[0].candidates] == [(c.text, c.rank) for c in first[0].candidates]
    assert again[0].candidates[0].cosine == pytest.approx(first[0].candidates[0].cosine)


def test_caption_cli(tmp_path: Path, red_circle: Path, tiny_coca: tuple[Path, Path], tiny_args: list[str]) -> None:
    cfg, weights = tiny_coca
    clip_args = ["--model", tiny_args[1], "--weights", tiny_args[3]]
    base = ["caption", red_circle.parent, "--captioner", cfg, "--captioner-weights", weights, "--max-tokens", 8,
            *clip_args]
    r = run(*base, "-n", 3, "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["path"] == str(red_circle) and row["cached"] is False
    cands = row["candidates"]
    assert 1 <= len(cands) <= 3 and row["caption"] == cands[0]["caption"]
    assert [c["cosine"] for c in cands] == sorted((c["cosine"] for c in cands), reverse=True)
    r2 = run(*base, "-n", 3, "--json")
    assert json.loads(r2.stdout)["cached"] is True
    assert json.loads(r2.stdout)["candidates"] == cands
    table = run(*base, "-n", 3)
    assert table.exit_code == 0 and table.stdout.splitlines()[0] == str(red_circle)
    assert cands[0]["caption"] in table.stdout.splitlines()[1]
    single = run(*base, "-q")
    assert single.exit_code == 0 and single.stdout.splitlines()[0].split() == ["cosine", "clipscore", "path", "caption"]


def test_caption_exit_codes(tmp_path: Path, red_circle: Path, tiny_coca: tuple[Path, Path]) -> None:
    cfg = tiny_coca[0]
    assert run("caption", red_circle, "--captioner", "nope").exit_code == 2
    assert run("caption", red_circle, "--captioner-weights", tmp_path / "missing.pt").exit_code == 2
    assert run("caption", red_circle, "--captioner", cfg).exit_code == 2  # a config needs --weights
    assert run("caption", red_circle, "--method", "greedy", "-n", 2).exit_code == 2
    # Offline (the tests set HF_HUB_OFFLINE) and nothing cached: one clear line, exit 1.
    r = run("caption", red_circle, "-q")
    assert r.exit_code == 1 and "--captioner-weights" in r.stderr and "Traceback" not in r.output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    r = run("caption", red_circle, "--captioner", cfg, "--captioner-weights", bad, "-q")
    assert r.exit_code == 1 and "cannot load captioner" in r.stderr


def test_default_captioner_is_the_short_caption_variant() -> None:
    spec = resolve_captioner()
    assert spec.repo == "apple/mobileclip2_coca_dfn2b_s13b_mscoco38k_s12m_context77" and spec.arch == "coca_ViT-L-14"
    assert resolve_captioner("docci").repo.endswith("docci_s12m_context77")


@pytest.mark.slow
def test_real_coca_architecture_generates(red_circle: Path) -> None:
    """coca_ViT-L-14 (the MobileCLIP2 CoCa architecture) with random weights: plumbing only."""
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model("coca_ViT-L-14", pretrained=None)
    with torch.no_grad():  # open_clip leaves this projection as torch.empty (garbage) when not loading weights
        model.text_decoder.text_projection.normal_(std=model.text_decoder.text_projection.shape[0] ** -0.5)
    tok = open_clip.get_tokenizer("coca_ViT-L-14")
    cap = Captioner.from_model(model, tok, "cpu", "fp32")
    assert cap.preprocess.size == (224, 224)
    out = cap.generate(_pixels(cap, red_circle), Decoding(method="beam", candidates=2, beams=2, max_tokens=4,
                                                          min_tokens=1))
    assert out and all(g.tokens[0] == SOT and g.tokens[-1] == EOT and len(g.tokens) <= 5 for g in out)
    assert all(isinstance(g.text, str) for g in out)


def test_write_xmp_is_merge_safe(tmp_path: Path, tiny_coca: tuple[Path, Path], tiny_args: list[str]) -> None:
    from mcphotos.sidecars.metadata import read_caption

    cfg, weights = tiny_coca
    pics = tmp_path / "xmp"
    mine = shape_photo(pics / "mine.png", "red", "circle", seed=1)
    theirs = shape_photo(pics / "theirs.png", "blue", "star", seed=2)
    person = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
              'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"><dc:description><rdf:Alt>'
              '<rdf:li xml:lang="x-default">Our holiday, by me</rdf:li></rdf:Alt></dc:description>'
              '</rdf:Description></rdf:RDF></x:xmpmeta>')
    (pics / "theirs.png.xmp").write_text(person)
    base = ["caption", pics, "--captioner", cfg, "--captioner-weights", weights, "--max-tokens", 8,
            "--model", tiny_args[1], "--weights", tiny_args[3], "--json", "--write-xmp"]
    r = run(*base)
    assert r.exit_code == 0, r.output
    rows = {Path(row["path"]).name: row for row in map(json.loads, r.stdout.splitlines())}
    found = read_caption(str(mine))
    assert found is not None and (found.text, found.source) == (rows["mine.png"]["caption"], "xmp-sidecar")
    assert read_caption(str(theirs)).text == "Our holiday, by me"  # a person's words are kept
    assert rows["theirs.png"]["xmp"][0]["kept"] is True and "kept the description" in r.stderr
    assert 'xmp:Rating="4"' in (pics / "theirs.png.xmp").read_text()
    forced = run(*base, "--force")
    assert forced.exit_code == 0
    assert read_caption(str(theirs)).text == rows["theirs.png"]["caption"]
    assert 'xmp:Rating="4"' in (pics / "theirs.png.xmp").read_text()  # the rest of the sidecar survives
    # Ours is recognised as ours: a new caption may replace it without --force.
    again = run(*base, "-n", 2)
    assert again.exit_code == 0 and "kept the description" not in again.stderr
