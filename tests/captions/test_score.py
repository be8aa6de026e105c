"""`mcphotos score`: meaning (tiny CLIP), batch input, store reuse, --from-metadata, --min exit codes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from PIL import Image

from mcphotos.captions.scoring import clip_score, read_pairs, softmax
from mcphotos.cli import app
from mcphotos.library import Library
from mcphotos.sidecars.metadata import read_caption, xmp_description
from tests.support.cli import runner
from tests.support.photos import shape_photo


def run(*args: object, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.fixture
def red_circle(tmp_path: Path) -> Path:
    return shape_photo(tmp_path / "pics" / "red_circle.png", "red", "circle", seed=3)


@pytest.fixture
def blue_star(tmp_path: Path) -> Path:
    return shape_photo(tmp_path / "pics" / "blue_star.png", "blue", "star", seed=4)


def test_clipscore_and_softmax_definitions() -> None:
    assert clip_score(0.3) == pytest.approx(0.75)
    assert clip_score(-0.2) == 0.0
    p = softmax([1.0, 2.0, 3.0])
    assert p.sum() == pytest.approx(1.0) and p[2] > p[1] > p[0]


def test_true_caption_scores_higher(red_circle: Path, tiny_args: list[str]) -> None:
    good = json.loads(run("score", red_circle, "a red circle", "--json", *tiny_args).stdout)
    bad = json.loads(run("score", red_circle, "a blue star", "--json", *tiny_args).stdout)
    assert good["cosine"] > bad["cosine"]
    assert good["clipscore"] == pytest.approx(2.5 * max(good["cosine"], 0), abs=1e-5)
    assert good["caption"] == "a red circle" and good["path"] == str(red_circle) and len(good["hash"]) == 40


def test_ranking_puts_the_true_caption_first(red_circle: Path, blue_star: Path, tiny_args: list[str]) -> None:
    captions = ["a blue star", "a green square", "a red circle", "a yellow triangle"]
    for photo, truth in ((red_circle, "a red circle"), (blue_star, "a blue star")):
        r = run("score", photo, *captions, "--json", *tiny_args)
        assert r.exit_code == 0, r.output
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        assert [row["rank"] for row in rows] == [1, 2, 3, 4]
        assert rows[0]["caption"] == truth
        assert sum(row["probability"] for row in rows) == pytest.approx(1.0, abs=1e-4)
        assert rows == sorted(rows, key=lambda row: -row["cosine"])
        assert rows[0]["probability"] > 0.5  # the model's logit scale makes the winner clear


def test_table_output(red_circle: Path, tiny_args: list[str]) -> None:
    r = run("score", red_circle, "a red circle", *tiny_args)
    assert r.exit_code == 0
    header, row = r.stdout.splitlines()
    assert header.split() == ["cosine", "clipscore", "path", "caption"]
    assert row.endswith("a red circle") and str(red_circle) in row


def test_min_exit_codes(red_circle: Path, tiny_args: list[str]) -> None:
    scores = {c: json.loads(run("score", red_circle, c, "--json", *tiny_args).stdout)["cosine"]
              for c in ("a red circle", "a blue star")}
    between = (scores["a red circle"] + scores["a blue star"]) / 2
    ok = run("score", red_circle, "a red circle", "--min", between, *tiny_args)
    assert ok.exit_code == 0, ok.output
    low = run("score", red_circle, "a blue star", "--min", between, *tiny_args)
    assert low.exit_code == 1
    assert "a blue star" in low.stderr and str(red_circle) in low.stderr
    assert "a blue star" in low.stdout  # the score itself is still printed
    # Rankings gate every caption; clipscore is a metric of its own.
    both = run("score", red_circle, "a red circle", "a blue star", "--min", between, *tiny_args)
    assert both.exit_code == 1 and "a blue star" in both.stderr and "a red circle" not in both.stderr
    cs = run("score", red_circle, "a red circle", "--min", 2.5 * scores["a red circle"] + 0.01,
             "--metric", "clipscore", *tiny_args)
    assert cs.exit_code == 1


def test_batch_tsv_jsonl_and_stdin(tmp_path: Path, red_circle: Path, blue_star: Path,
                                   tiny_args: list[str]) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text(f"path\tcaption\n{red_circle}\ta red circle\n\n{blue_star}\ta red circle\n")
    r = run("score", "--pairs", tsv, "--json", *tiny_args)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["path"] for row in rows] == [str(red_circle), str(blue_star)]
    assert rows[0]["cosine"] > rows[1]["cosine"]
    jsonl = "\n".join(json.dumps({"path": str(p), "caption": c})
                      for p, c in ((red_circle, "a red circle"), (blue_star, "a red circle")))
    r2 = run("score", "--pairs", "-", "--json", *tiny_args, input=jsonl + "\n")
    assert [json.loads(line) for line in r2.stdout.splitlines()] == rows


def test_batch_reports_unreadable_photos_and_bad_lines(tmp_path: Path, red_circle: Path,
                                                      tiny_args: list[str]) -> None:
    r = run("score", "--pairs", "-", "--json", *tiny_args,
            input=f"{tmp_path / 'gone.png'}\ta cat\n{red_circle}\ta red circle\n")
    assert r.exit_code == 1
    assert len(r.stdout.splitlines()) == 1 and "skipping" in r.stderr and "gone.png" in r.stderr
    bad = run("score", "--pairs", "-", *tiny_args, input="no tab here\n")
    assert bad.exit_code == 2 and "line 1" in bad.output
    assert run("score", red_circle, *tiny_args).exit_code == 2  # a photo without a caption


def test_read_pairs_formats() -> None:
    import io

    text = 'a.jpg\tone\n{"path": "b.jpg", "caption": "two\\tthree"}\n\n'
    assert list(read_pairs(io.StringIO(text))) == [("a.jpg", "one"), ("b.jpg", "two\tthree")]


def test_indexed_photos_reuse_their_vectors(tmp_path: Path, red_circle: Path, blue_star: Path,
                                            tiny_clip: tuple[Path, Path]) -> None:
    cfg, weights = tiny_clip
    copy = tmp_path / "elsewhere" / "renamed.png"
    copy.parent.mkdir()
    copy.write_bytes(red_circle.read_bytes())
    fresh = shape_photo(tmp_path / "new" / "green.png", "green", "square", seed=9)
    with Library(model=str(cfg), weights=str(weights)) as lib:
        lib.index([str(red_circle.parent)])
        got = lib.scorer().photo_vectors([str(red_circle), str(copy), str(fresh)])
        assert got[str(red_circle)].from_store and got[str(copy)].from_store
        assert not got[str(fresh)].from_store
        # The stored vector and an on-the-fly embedding agree: the same model made both.
        stored = got[str(red_circle)].vector
        otf = lib.engine().encode_images(__import__("numpy").stack([
            __import__("mcphotos.indexing.imaging", fromlist=["x"]).decode_for_model(red_circle.read_bytes(),
                                                                             lib.preprocess()).pixels]))[0]
        assert float(stored @ otf) > 0.999


def test_repeated_question_needs_no_model(red_circle: Path, tiny_clip: tuple[Path, Path]) -> None:
    cfg, weights = tiny_clip
    with Library(model=str(cfg), weights=str(weights)) as lib:
        lib.index([str(red_circle.parent)])
        first = lib.scorer().rank(str(red_circle), ["a red circle", "a blue star"])

    def no_model():
        raise AssertionError("the model was loaded")

    with Library(model=str(cfg), weights=str(weights), engine_factory=no_model) as lib:
        again = lib.scorer().rank(str(red_circle), ["a red circle", "a blue star"])
    assert [(r.caption, round(r.probability, 5)) for r in again] == [(r.caption, round(r.probability, 5))
                                                                      for r in first]


# -- existing captions ---------------------------------------------------------------------------

XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description><rdf:Alt>
<rdf:li xml:lang="de">ein roter Kreis</rdf:li><rdf:li xml:lang="x-default">{text}</rdf:li>
</rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""


def _iptc_app13(caption: bytes) -> bytes:
    record = b"\x1c\x02\x78" + struct.pack(">H", len(caption)) + caption
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(record)) + record
    if len(record) % 2:
        resource += b"\x00"
    body = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def test_read_caption_sources(tmp_path: Path) -> None:
    base = shape_photo(tmp_path / "base.png", "red", "circle", seed=1)
    img = Image.open(base).convert("RGB")

    exif_jpg = tmp_path / "exif.jpg"
    exif = Image.Exif()
    exif[0x010E] = "a red circle on grey"
    img.save(exif_jpg, exif=exif)
    assert read_caption(str(exif_jpg)) == ("a red circle on grey", "exif") or \
        (read_caption(str(exif_jpg)).text, read_caption(str(exif_jpg)).source) == ("a red circle on grey", "exif")

    camera = tmp_path / "camera.jpg"
    exif[0x010E] = "OLYMPUS DIGITAL CAMERA         "
    img.save(camera, exif=exif)
    assert read_caption(str(camera)) is None

    xmp_jpg = tmp_path / "xmp.jpg"
    img.save(xmp_jpg, xmp=XMP.format(text="embedded words").encode())
    found = read_caption(str(xmp_jpg))
    assert found is not None and (found.text, found.source) == ("embedded words", "xmp")

    iptc = tmp_path / "iptc.jpg"
    img.save(iptc)
    data = iptc.read_bytes()
    iptc.write_bytes(data[:2] + _iptc_app13("légende IPTC".encode()) + data[2:])
    found = read_caption(str(iptc))
    assert found is not None and (found.text, found.source) == ("légende IPTC", "iptc")

    # A sidecar wins over what the file carries: it is what people edit.
    (tmp_path / "exif.jpg.xmp").write_text(XMP.format(text="from the sidecar"))
    found = read_caption(str(exif_jpg))
    assert found is not None and (found.text, found.source) == ("from the sidecar", "xmp-sidecar")
    assert read_caption(str(base)) is None
    assert xmp_description(b"<not xml") is None


def test_from_metadata_finds_mismatched_alt_text(tmp_path: Path, tiny_args: list[str]) -> None:
    lib_dir = tmp_path / "library"
    good = shape_photo(lib_dir / "good.png", "red", "circle", seed=5)
    bad = shape_photo(lib_dir / "bad.png", "red", "circle", seed=6)
    shape_photo(lib_dir / "none.png", "blue", "star", seed=7)
    (lib_dir / "good.png.xmp").write_text(XMP.format(text="a red circle"))
    (lib_dir / "bad.xmp").write_text(XMP.format(text="a blue star"))
    r = run("score", "--from-metadata", lib_dir, "--json", *tiny_args)
    assert r.exit_code == 0, r.output
    rows = {Path(row["path"]).name: row for row in map(json.loads, r.stdout.splitlines())}
    assert set(rows) == {"good.png", "bad.png"} and rows["good.png"]["source"] == "xmp-sidecar"
    assert rows["good.png"]["cosine"] > rows["bad.png"]["cosine"]
    assert "1 photos carry no caption" in r.stderr
    gate = (rows["good.png"]["cosine"] + rows["bad.png"]["cosine"]) / 2
    r2 = run("score", "--from-metadata", good, bad, "--min", gate, *tiny_args)
    assert r2.exit_code == 1 and str(bad) in r2.stderr and str(good) not in r2.stderr


def test_help_does_not_import_torch(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from mcphotos.cli import app\n"
        "for args in (['score', '--help'], ['caption', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "print([m for m in ('torch', 'open_clip') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MCPHOTOS_HOME": str(tmp_path)})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
