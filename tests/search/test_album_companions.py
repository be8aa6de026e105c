"""Album folders link a photo's companions beside it, and only ever remove links they made."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mcphotos.search.albums import MANIFEST, sync_links


def files(root: Path, *names: str) -> list[Path]:
    out = []
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(n.encode())
        out.append(p)
    return out


def links(album: Path) -> dict[str, str]:
    return {p.name: os.readlink(p) for p in album.iterdir() if p.is_symlink()}


def test_sync_links_companions_and_takes_them_away_with_their_photo(tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    jpg, mov, xmp, raw, other = files(pics, "IMG_1.JPG", "IMG_1.MOV", "IMG_1.JPG.xmp", "IMG_1.CR2", "b.png")
    album = tmp_path / "album"
    r = sync_links("a", [(str(jpg), "11" * 16), (str(other), "22" * 16)], album)
    assert (r.added, r.companions) == (2, 3)
    assert links(album) == {"IMG_1.JPG": str(jpg), "IMG_1.MOV": str(mov), "IMG_1.JPG.xmp": str(xmp),
                            "IMG_1.CR2": str(raw), "b.png": str(other)}
    manifest = json.loads((album / MANIFEST).read_text())
    assert set(manifest["links"]) == {"IMG_1.JPG", "b.png"} and len(manifest["companions"]) == 3
    # A sidecar written later joins on the next sync; a photo leaving takes its companions along.
    (adobe,) = files(pics, "IMG_1.xmp")
    r = sync_links("a", [(str(jpg), "11" * 16)], album)
    assert (r.kept, r.removed, r.companions) == (1, 1, 4) and links(album)["IMG_1.xmp"] == str(adobe)
    r = sync_links("a", [(str(other), "22" * 16)], album)
    assert links(album) == {"b.png": str(other)} and r.companions == 0


def test_a_users_file_in_the_way_renames_photo_and_companions_together(tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    jpg, mov = files(pics, "IMG_1.JPG", "IMG_1.MOV")
    album = tmp_path / "album"
    album.mkdir()
    (album / "IMG_1.MOV").write_text("my own video")  # only the companion's name is taken
    sync_links("a", [(str(jpg), "ab12cd34" * 4)], album)
    assert links(album) == {"IMG_1-ab12cd34.JPG": str(jpg), "IMG_1-ab12cd34.MOV": str(mov)}
    assert (album / "IMG_1.MOV").read_text() == "my own video"
    # A companion link the user replaced with a file of their own is left alone and forgotten.
    (album / "IMG_1-ab12cd34.MOV").unlink()
    (album / "IMG_1-ab12cd34.MOV").write_text("mine now")
    r = sync_links("a", [], album)
    assert r.foreign == ["IMG_1-ab12cd34.MOV"] and (album / "IMG_1-ab12cd34.MOV").read_text() == "mine now"
    assert links(album) == {}
