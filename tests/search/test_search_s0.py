"""Every query form, filter and output of issue 7 through the CLI, on the real MobileCLIP2-S0
architecture with random weights: plumbing, not meaning (random weights rank nothing).

One test walks through everything so the model loads only where a command really needs it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from mcphotos.cli import app
from tests.support.cli import runner
from tests.support.photos import photo


def cli(*args: str, env: dict | None = None):
    r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)
    assert r.exit_code == 0, r.output
    return r


def rows(r) -> list[dict]:
    return [json.loads(line) for line in r.stdout.splitlines()]


def names(r) -> set[str]:
    return {Path(x["path"]).name for x in rows(r)}


def stamp(path: Path, when: str) -> Path:
    ts = datetime.fromisoformat(when).timestamp()
    os.utime(path, (ts, ts))
    return path


def test_search_power_end_to_end_on_the_real_architecture(s0_weights: Path, tmp_path: Path) -> None:
    w = ["--weights", str(s0_weights)]
    pics = tmp_path / "pics"
    stamp(photo(pics / "old" / "a.jpg", seed=1, size=(320, 240), fmt="JPEG"), "2020-01-02T10:00:00")
    stamp(photo(pics / "old" / "b.png", seed=2, size=(240, 320)), "2020-06-02T10:00:00")
    stamp(photo(pics / "new" / "c.jpg", seed=3, size=(300, 300), fmt="JPEG"), "2024-03-02T10:00:00")
    stamp(photo(pics / "new" / "d.webp", seed=4, fmt="WEBP"), "2024-08-02T10:00:00")
    cli("index", pics, "-q", *w)

    # Text, with each filter and their combination.
    assert names(cli("find", "a photo", "--json", *w)) == {"a.jpg", "b.png", "c.jpg", "d.webp"}
    assert names(cli("find", "a photo", "--json", "--in", pics / "old", *w)) == {"a.jpg", "b.png"}
    assert names(cli("find", "a photo", "--json", "--ext", "jpg", *w)) == {"a.jpg", "c.jpg"}
    assert names(cli("find", "a photo", "--json", "--after", "2024", *w)) == {"c.jpg", "d.webp"}
    assert names(cli("find", "a photo", "--json", "--before", "2020-03", *w)) == {"a.jpg"}
    assert names(cli("find", "a photo", "--json", "--in", pics / "new", "--ext", "webp", "--after", "2024-06",
                     *w)) == {"d.webp"}

    # Query by example (in the store), and combined terms mixing text and images.
    r = rows(cli("find", "--image", pics / "old" / "b.png", "--json", "-k", "4", *w))
    assert Path(r[0]["path"]).name == "b.png" and abs(r[0]["score"] - 1.0) < 1e-4
    # Combined: the scores are those of the renormalized weighted sum, computed here from the
    # stored vectors (embed reads them from the store) and the cached text vector.
    all4 = [pics / "old" / "a.jpg", pics / "old" / "b.png", pics / "new" / "c.jpg", pics / "new" / "d.webp"]
    vec = {x["path"]: np.array(x["vector"]) for x in rows(cli("embed", *all4, "--json", *w))}
    text = np.array(rows(cli("embed", "--text", "a photo", *w))[0]["vector"])
    q = text - 0.5 * vec[str(all4[0])] + 2 * vec[str(all4[2])]
    q /= np.linalg.norm(q)
    r = rows(cli("find", f"a photo - 0.5*@{all4[0]} + 2*@{all4[2]}", "--json", *w))
    assert len(r) == 4 and all(abs(x["score"] - float(vec[x["path"]] @ q)) < 1e-4 for x in r)
    assert [x["score"] for x in r] == sorted((x["score"] for x in r), reverse=True)
    # A photo outside the store is embedded on the fly; its copy in the store is itself.
    outside = tmp_path / "outside.jpg"
    Image.open(pics / "new" / "c.jpg").save(outside, quality=70)
    r = rows(cli("find", "--image", outside, "--json", "-k", "2", "--ext", "jpg", *w))
    assert {Path(x["path"]).name for x in r} == {"a.jpg", "c.jpg"}

    # Cut-offs return a non-empty prefix of the plain ranking.
    plain = [x["path"] for x in rows(cli("find", "a photo", "--json", *w))]
    for cut in (["--relative", "0.99"], ["--auto-cut"], ["--min-score", "-1"]):
        got = [x["path"] for x in rows(cli("find", "a photo", "--json", *cut, *w))]
        assert got and got == plain[: len(got)], cut
    bad = runner.invoke(app, ["find", "a photo", "--relative", "2", *w])
    assert bad.exit_code == 2 and "--relative" in bad.output
    bad = runner.invoke(app, ["find", "beach + ", *w])
    assert bad.exit_code == 2 and "ends with an operator" in bad.output

    # Outputs: contact sheet, inline preview (kitty, iTerm2) and the fallback.
    sheet = tmp_path / "sheet.jpg"
    r = cli("find", "a photo", "--sheet", sheet, "--paths", *w)
    assert len(r.stdout.splitlines()) == 4 and "wrote" in r.stderr
    assert Image.open(sheet).size[0] > 4 * 150
    r = cli("find", "a photo", "--preview", "-k", "2", *w, env={"MCPHOTOS_PREVIEW": "kitty"})
    assert r.stdout.count("\x1b_Ga=T,f=100") == 2
    r = cli("find", "a photo", "--preview", "-k", "2", *w, env={"MCPHOTOS_PREVIEW": "iterm"})
    assert r.stdout.count("\x1b]1337;File=inline=1") == 2
    r = cli("find", "a photo", "--preview", "-k", "2", *w, env={"MCPHOTOS_PREVIEW": "", "TERM": "dumb"})
    assert "\x1b" not in r.stdout and "path" in r.stdout and "no inline images" in r.stderr

    # Albums: save with filters, sync to a folder of links, list.
    cli("album", "save", "recent", "a photo", "--after", "2024", *w)
    album = tmp_path / "album"
    r = json.loads(cli("album", "sync", "recent", "--to", album, "--json", *w).stdout)
    assert r["added"] == 2 and sorted(os.listdir(album)) == [".mcphotos-album.json", "c.jpg", "d.webp"]
    assert os.readlink(album / "c.jpg") == str(pics / "new" / "c.jpg")
    listed = rows(cli("album", "list", "--json", *w))
    assert listed[0]["name"] == "recent" and listed[0]["photos"] == 2 and "--after 2024-01-01" in listed[0]["query"]

    # Embeddings for other tools.
    r = rows(cli("embed", pics / "old" / "a.jpg", outside, "--json", *w))
    assert [x["cached"] for x in r] == [True, False] and len(r[0]["vector"]) == 512
    assert abs(np.linalg.norm(r[1]["vector"]) - 1) < 1e-4
    t = rows(cli("embed", "--text", "a photo", *w))
    assert t[0]["text"] == "a photo" and len(t[0]["vector"]) == 512
    cli("embed", pics / "old" / "a.jpg", pics / "new" / "d.webp", "--out", tmp_path / "v.npy", *w)
    assert np.load(tmp_path / "v.npy").shape == (2, 512)
    assert (tmp_path / "v.paths.txt").read_text().splitlines() == [str(pics / "old" / "a.jpg"),
                                                                 str(pics / "new" / "d.webp")]
    r = json.loads(cli("export", tmp_path / "export", "--json", *w).stdout)
    assert r["rows"] == 4 and np.load(tmp_path / "export" / "img_emb" / "img_emb_0.npy").shape == (4, 512)
