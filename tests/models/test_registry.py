"""The one table of models and captioners: resolution, help texts, hints, and `mcphotos models`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mcphotos.cli import app
from mcphotos.errors import UsageError
from mcphotos.models.coca import resolve_captioner
from mcphotos.models.registry import (
    DEFAULT_CAPTIONER,
    DEFAULT_MODEL,
    KNOWN_MODELS,
    REGISTRY,
    cached_hub_file,
    captioner_choices_help,
    entries,
    lookup,
    model_choices_help,
    resolve_model,
    unknown_captioner_hint,
    unknown_model_hint,
)
from tests.support.cli import assert_light, runner
from tests.support.photos import photo

CLIPS = entries("clip")
CAPTIONERS = entries("captioner")

# What --model accepted before the registry, and what each name meant: it must not change.
LEGACY_MODELS = {
    "MobileCLIP2-S0": ("MobileCLIP2-S0", "dfndr2b"), "mobileclip2-s0": ("MobileCLIP2-S0", "dfndr2b"),
    "S0": ("MobileCLIP2-S0", "dfndr2b"), "s0": ("MobileCLIP2-S0", "dfndr2b"), " S0 ": ("MobileCLIP2-S0", "dfndr2b"),
    "S2": ("MobileCLIP2-S2", "dfndr2b"), "b": ("MobileCLIP2-B", "dfndr2b"), "S3": ("MobileCLIP2-S3", "dfndr2b"),
    "s4": ("MobileCLIP2-S4", "dfndr2b"), "l-14": ("MobileCLIP2-L-14", "dfndr2b"),
    "MobileCLIP-S1": ("MobileCLIP-S1", "datacompdr"), "mobileclip-s2": ("MobileCLIP-S2", "datacompdr"),
    "MOBILECLIP-B": ("MobileCLIP-B", "datacompdr"),
    "ViT-B-32": ("ViT-B-32", None), "S1": ("S1", None), "L14": ("L14", None), "docci": ("docci", None),
}


def _hub_cache() -> Path:
    import huggingface_hub.constants as hc

    return Path(hc.HF_HUB_CACHE)


def plant(repo: str, filename: str, data: bytes = b"weights", commit: str = "abc123") -> Path:
    """Put ``filename`` into the (test-private) HF cache as a download of ``repo`` would."""
    base = _hub_cache() / ("models--" + repo.replace("/", "--"))
    blob = base / "blobs" / f"blob-{commit}-{filename}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    (snap / filename).symlink_to(os.path.relpath(blob, snap))
    (base / "refs").mkdir(exist_ok=True)
    (base / "refs" / "main").write_text(commit)
    return snap / filename


def models_json(*args: str) -> list[dict]:
    r = runner.invoke(app, ["models", "--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()]


# -- the table -----------------------------------------------------------------------------------


def test_names_and_aliases_are_unique_within_a_kind() -> None:
    for kind in ("clip", "captioner"):
        names = [n.lower() for e in entries(kind) for n in e.names]  # type: ignore[arg-type]
        assert len(names) == len(set(names)), kind
    assert [e.name for e in REGISTRY if e.is_default] == [DEFAULT_MODEL, DEFAULT_CAPTIONER]
    assert all(e.description and e.hub for e in REGISTRY)


@pytest.mark.parametrize("entry", CLIPS, ids=lambda e: e.name)
def test_every_model_alias_resolves_to_the_same_entry(entry, tmp_path: Path) -> None:
    canonical = resolve_model(entry.name)
    assert (canonical.name, canonical.pretrained, canonical.weights) == (entry.name, entry.pretrained, None)
    for name in entry.names:
        for spelling in (name, name.lower(), name.upper(), f"  {name} "):
            assert lookup(spelling, "clip") is entry
            assert resolve_model(spelling) == canonical
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    for name in entry.names:  # a local checkpoint keeps the name, drops the tag
        spec = resolve_model(name, str(weights))
        assert (spec.name, spec.pretrained, spec.weights) == (entry.name, None, str(weights))
        assert resolve_model(name, pretrained="other").pretrained == "other"


def test_model_names_accepted_before_the_registry_mean_the_same() -> None:
    for name, (canonical, tag) in LEGACY_MODELS.items():
        spec = resolve_model(name)
        assert (spec.name, spec.pretrained) == (canonical, tag), name
    assert resolve_model(None) == resolve_model("") == resolve_model(DEFAULT_MODEL)
    assert dict.fromkeys(["MobileCLIP2-S0", "MobileCLIP2-S2", "MobileCLIP2-B", "MobileCLIP2-S3", "MobileCLIP2-S4",
                          "MobileCLIP2-L-14"], "dfndr2b") | dict.fromkeys(
        ["MobileCLIP-S1", "MobileCLIP-S2", "MobileCLIP-B"], "datacompdr") == KNOWN_MODELS


@pytest.mark.parametrize("entry", CAPTIONERS, ids=lambda e: e.name)
def test_every_captioner_spelling_resolves_to_the_same_entry(entry) -> None:
    spec = resolve_captioner(entry.name)
    assert (spec.name, spec.repo, spec.weights) == (entry.name, entry.hub, None)
    for spelling in (entry.name.upper(), f" {entry.name} ", entry.hub, entry.hub.upper(),
                     "apple/mobileclip2_coca_dfn2b_s13b_" + entry.name):
        assert resolve_captioner(spelling) == spec, spelling
    assert lookup(entry.name, "clip") is None  # a captioner is not a --model


def test_captioners_outside_the_table_still_resolve(tmp_path: Path) -> None:
    assert resolve_captioner() == resolve_captioner(DEFAULT_CAPTIONER)
    other = "apple/mobileclip2_coca_dfn2b_s13b_dci-extended_s12m_context128"
    spec = resolve_captioner(other)
    assert (spec.name, spec.repo) == ("dci-extended_s12m_context128", other)
    weights = tmp_path / "coca.pt"
    weights.write_bytes(b"x")
    spec = resolve_captioner("coca_ViT-L-14", str(weights))
    assert (spec.name, spec.arch, spec.repo) == ("coca_ViT-L-14", "coca_ViT-L-14", None)


def test_the_table_agrees_with_open_clip() -> None:
    """Hub repos and preprocessing here are open_clip's, so `models` can show them without torch."""
    import open_clip

    for e in CLIPS:
        cfg = open_clip.get_pretrained_cfg(e.name, e.pretrained)
        assert cfg, e.name
        assert cfg["hf_hub"].rstrip("/") == e.hub, e.name
        assert e.preprocess is not None
        ours = e.preprocess.as_dict()
        assert ours["mean"] == pytest.approx(list(cfg["mean"])) and ours["std"] == pytest.approx(list(cfg["std"]))
        assert (ours["interpolation"], ours["resize_mode"]) == (cfg["interpolation"], cfg["resize_mode"]), e.name


# -- help texts and hints ------------------------------------------------------------------------


def test_every_entry_shows_up_in_its_help_text() -> None:
    model_help, captioner_help = model_choices_help(), captioner_choices_help()
    tokens = {t.strip(" ,.;()") for t in model_help.split()}
    for e in CLIPS:
        assert any(n in tokens for n in e.names), e.name
    assert model_help.startswith(f"{DEFAULT_MODEL} (default)") and "`mcphotos models`" in model_help
    tokens = {t.strip(" ,.;()") for t in captioner_help.split()}
    for e in CAPTIONERS:
        assert e.name in tokens, e.name
    assert captioner_help.startswith(f"{DEFAULT_CAPTIONER} (default)")


def test_models_table_shows_every_entry_and_its_description() -> None:
    r = runner.invoke(app, ["models"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ALIASES", "KIND", "PRETRAINED", "HUB", "CACHED", "DESCRIPTION"]
    assert len(lines) == 1 + len(REGISTRY)
    for e, line in zip(REGISTRY, lines[1:], strict=True):
        assert line.split()[0] == e.name and e.hub in line and e.description in line
        assert " no " in line  # the test HF cache is empty
    r = runner.invoke(app, ["models", "--help"], catch_exceptions=False)
    assert r.exit_code == 0 and "--json" in r.output


def test_unknown_model_hint_names_close_matches() -> None:
    hint = unknown_model_hint("MobileCLIP2-S9")
    assert hint.startswith("did you mean MobileCLIP2-S") and "`mcphotos models`" in hint
    assert "MobileCLIP2-L-14 (alias L-14)" in unknown_model_hint("L-41")
    assert "did you mean" not in unknown_model_hint("NoSuchModel-X")
    assert unknown_captioner_hint("doci").startswith("did you mean docci?")


def test_unknown_model_is_one_line_with_a_suggestion(tmp_path: Path) -> None:
    photo(tmp_path / "pics" / "a.png")
    r = runner.invoke(app, ["index", str(tmp_path / "pics"), "--model", "MobileCLIP2-S9", "-q"])
    assert r.exit_code == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("mcphotos: error: unknown model 'MobileCLIP2-S9'") and "did you mean" in lines[0]
    assert "MobileCLIP2-S" in lines[0] and "`mcphotos models`" in lines[0]


def test_unknown_captioner_suggests_the_close_one() -> None:
    with pytest.raises(UsageError) as e:
        resolve_captioner("mscoco-38k")
    assert str(e.value).startswith("unknown captioner 'mscoco-38k' (did you mean mscoco38k?")
    assert "\n" not in str(e.value)


# -- the local Hugging Face cache ----------------------------------------------------------------


def test_models_json_lists_every_entry_and_marks_what_is_cached(tmp_path: Path) -> None:
    assert tmp_path in _hub_cache().parents  # the test's own cache, never the user's
    rows = models_json()
    assert [r["name"] for r in rows] == [e.name for e in REGISTRY]
    assert not any(r["cached"] for r in rows)
    s0 = plant("timm/MobileCLIP2-S0-OpenCLIP", "open_clip_pytorch_model.bin")
    coca = plant("apple/mobileclip2_coca_dfn2b_s13b_docci_s12m_context77", "mobileclip2_coca_docci.pt")
    plant("timm/MobileCLIP2-S2-OpenCLIP", "README.md")  # a repo without its checkpoint is not cached
    rows = {r["name"]: r for r in models_json()}
    assert rows["MobileCLIP2-S0"]["cached"] is True and rows["MobileCLIP2-S0"]["cached_path"] == str(s0)
    assert rows["docci"]["cached"] is True and rows["docci"]["cached_path"] == str(coca)
    assert [n for n, r in rows.items() if r["cached"]] == ["MobileCLIP2-S0", "docci"]
    s0_row = rows["MobileCLIP2-S0"]
    assert s0_row["aliases"] == ["S0"] and s0_row["kind"] == "clip" and s0_row["default"] is True
    assert s0_row["pretrained"] == "dfndr2b" and s0_row["hub"] == "timm/MobileCLIP2-S0-OpenCLIP"
    assert s0_row["preprocess"]["resize_mode"] == "shortest"
    assert rows["docci"]["kind"] == "captioner" and rows["docci"]["pretrained"] is None
    assert [r["name"] for r in models_json("--kind", "captioner")] == [e.name for e in CAPTIONERS]


def test_one_cache_lookup_serves_the_engine_and_models() -> None:
    """The engine's check (before it would go to the network) is the same function `models` uses."""
    from mcphotos.models.clip import _cached_hub_weights

    class FakeOpenClip:
        @staticmethod
        def get_pretrained_cfg(name: str, tag: str) -> dict:
            return {"hf_hub": "timm/MobileCLIP2-S0-OpenCLIP/"}

    assert _cached_hub_weights(FakeOpenClip, "MobileCLIP2-S0", "dfndr2b") is None
    path = plant("timm/MobileCLIP2-S0-OpenCLIP", "open_clip_model.safetensors")
    assert _cached_hub_weights(FakeOpenClip, "MobileCLIP2-S0", "dfndr2b") == str(path)
    assert cached_hub_file("timm/MobileCLIP2-S0-OpenCLIP") == str(path)  # any checkpoint
    path.unlink()  # a snapshot link whose blob is gone is not a download
    assert cached_hub_file("timm/MobileCLIP2-S0-OpenCLIP", ["open_clip_model.safetensors"]) is None


def test_models_imports_no_torch(tmp_path: Path) -> None:
    assert_light(tmp_path, ["models"], ["models", "--json"], ["models", "--help"])
