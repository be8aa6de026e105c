"""XMP sidecars: read back with exiftool, other tools' content preserved, only our keywords removed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mcphotos.sidecars import xmp
from tests.support.tools import require_tool

WHY = "sidecars are verified by reading them back with it"


@pytest.fixture
def exiftool() -> str:
    return require_tool("exiftool", WHY)

DARKTABLE = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
   xmp:Rating="3"
   darktable:xmp_version="5"
   darktable:history_end="2">
   <dc:subject>
    <rdf:Bag>
     <rdf:li>holiday</rdf:li>
     <rdf:li>dog</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <lr:hierarchicalSubject>
    <rdf:Bag>
     <rdf:li>places|italy</rdf:li>
    </rdf:Bag>
   </lr:hierarchicalSubject>
   <!-- darktable's edit history -->
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="exposure" darktable:enabled="1"
      darktable:params="0000000000000000" darktable:multi_name=""/>
     <rdf:li darktable:num="1" darktable:operation="colorbalancergb" darktable:enabled="1"
      darktable:params="abcdef0123456789" darktable:multi_name="look"/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def exif(path: Path) -> dict:
    out = subprocess.run([require_tool("exiftool", WHY), "-json", "-G1", "-a", "-struct", str(path)],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)[0]
    return {k: v for k, v in data.items() if not k.startswith(("System:", "File:", "ExifTool:")) and k != "SourceFile"}


def as_list(v: object) -> list:
    return v if isinstance(v, list) else [] if v is None else [v]


def test_new_sidecar_has_all_three_keyword_forms(tmp_path: Path, exiftool: str) -> None:
    img = tmp_path / "a.jpg"
    img.write_bytes(b"not really a jpeg")
    [ch] = xmp.update_sidecar(img, machine_tags=["animals/pets/dog", "scenes/outdoors/beach"])
    assert ch.created and ch.written and ch.sidecar == str(tmp_path / "a.jpg.xmp")
    assert img.read_bytes() == b"not really a jpeg"
    data = exif(tmp_path / "a.jpg.xmp")
    assert as_list(data["XMP-lr:HierarchicalSubject"]) == ["mcphotos|animals|pets|dog",
                                                          "mcphotos|scenes|outdoors|beach"]
    assert as_list(data["XMP-digiKam:TagsList"]) == ["mcphotos/animals/pets/dog", "mcphotos/scenes/outdoors/beach"]
    assert set(as_list(data["XMP-dc:Subject"])) == {"animals", "pets", "dog", "scenes", "outdoors", "beach"}


def test_darktable_content_survives_and_reruns_do_not_duplicate(tmp_path: Path, exiftool: str) -> None:
    img = tmp_path / "IMG_1.CR2"
    img.write_bytes(b"raw")
    side = tmp_path / "IMG_1.CR2.xmp"
    side.write_text(DARKTABLE, encoding="utf-8")
    before = exif(side)
    [ch] = xmp.update_sidecar(img, machine_tags=["animals/dog"])
    assert ch.added == ("mcphotos|animals|dog",) and not ch.created
    after = exif(side)
    for key, value in before.items():  # every value already there is still there, unchanged
        if key not in ("XMP-dc:Subject", "XMP-lr:HierarchicalSubject"):
            assert after[key] == value, key
    assert as_list(after["XMP-dc:Subject"]) == ["holiday", "dog", "animals"]  # "dog" was there: not doubled
    assert as_list(after["XMP-lr:HierarchicalSubject"]) == ["places|italy", "mcphotos|animals|dog"]
    assert len(as_list(after["XMP-darktable:History"])) == 2
    text = side.read_text(encoding="utf-8")
    assert text.startswith('<?xpacket begin="\ufeff"') and text.rstrip().endswith('<?xpacket end="w"?>')
    assert "<!-- darktable's edit history -->" in text

    mtime = side.stat().st_mtime_ns
    [again] = xmp.update_sidecar(img, machine_tags=["animals/dog"])
    assert not again.changed and not again.written and side.stat().st_mtime_ns == mtime
    assert as_list(exif(side)["XMP-lr:HierarchicalSubject"]).count("mcphotos|animals|dog") == 1

    # Replacing and then removing our tags leaves the person's keywords alone, "dog" included.
    [ch] = xmp.update_sidecar(img, machine_tags=["animals/cat"])
    assert ch.added == ("mcphotos|animals|cat",) and ch.removed == ("mcphotos|animals|dog",)
    assert as_list(exif(side)["XMP-dc:Subject"]) == ["holiday", "dog", "animals", "cat"]
    [ch] = xmp.update_sidecar(img, machine_tags=[])
    final = exif(side)
    assert as_list(final["XMP-dc:Subject"]) == ["holiday", "dog"]
    assert as_list(final["XMP-lr:HierarchicalSubject"]) == ["places|italy"]
    assert "XMP-digiKam:TagsList" not in final
    assert {k: v for k, v in final.items() if not k.startswith("XMP-mcphotos")} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_adobe_and_darktable_names(tmp_path: Path) -> None:
    img = tmp_path / "b.jpg"
    img.write_bytes(b"x")
    [ch] = xmp.update_sidecar(img, machine_tags=["x"], style="adobe")
    assert ch.sidecar == str(tmp_path / "b.xmp") and not (tmp_path / "b.jpg.xmp").exists()
    # An existing Adobe sidecar is used even when the darktable form is asked for new files.
    [ch] = xmp.update_sidecar(img, machine_tags=["x", "y"], style="darktable")
    assert ch.sidecar == str(tmp_path / "b.xmp") and not (tmp_path / "b.jpg.xmp").exists()
    assert xmp.read_sidecar(tmp_path / "b.xmp").hierarchical == ("mcphotos|x", "mcphotos|y")
    # Both forms present: both are kept in step.
    (tmp_path / "b.jpg.xmp").write_text(xmp.NEW_SIDECAR)
    changes = xmp.update_sidecar(img, machine_tags=["z"])
    assert [Path(c.sidecar).name for c in changes] == ["b.jpg.xmp", "b.xmp"]
    assert all(xmp.read_sidecar(Path(c.sidecar)).hierarchical == ("mcphotos|z",) for c in changes)


def test_malformed_sidecar_is_left_untouched_and_reported(tmp_path: Path) -> None:
    img = tmp_path / "c.jpg"
    img.write_bytes(b"x")
    side = tmp_path / "c.jpg.xmp"
    broken = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF>unclosed"
    side.write_bytes(broken)
    [ch] = xmp.update_sidecar(img, machine_tags=["animals/dog"])
    assert ch.error and "left untouched" in ch.error and not ch.written
    assert side.read_bytes() == broken
    side.write_bytes(b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x/>")
    [ch] = xmp.update_sidecar(img, machine_tags=["animals/dog"])
    assert ch.error and "DTD" in ch.error


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    img = tmp_path / "d.jpg"
    img.write_bytes(b"x")
    [ch] = xmp.update_sidecar(img, machine_tags=["a/b"], dry_run=True)
    assert ch.created and ch.added == ("mcphotos|a|b",) and not ch.written
    assert not (tmp_path / "d.jpg.xmp").exists()
    # Removing from a sidecar that does not exist does not create one.
    [ch] = xmp.update_sidecar(img, machine_tags=[])
    assert not ch.changed and not (tmp_path / "d.jpg.xmp").exists()


def test_description_never_overwrites_a_persons_unless_forced(tmp_path: Path, exiftool: str) -> None:
    img = tmp_path / "e.jpg"
    img.write_bytes(b"x")
    [ch] = xmp.update_sidecar(img, description="a dog on a beach")
    assert ch.description == "a dog on a beach"
    [ch] = xmp.update_sidecar(img, description="a dog running on a beach")  # ours: may be replaced
    assert ch.description == "a dog running on a beach"
    side = tmp_path / "e.jpg.xmp"
    subprocess.run([exiftool, "-overwrite_original", "-XMP-dc:Description=Rex at Brighton, 2019", str(side)],
                   check=True, capture_output=True)
    [ch] = xmp.update_sidecar(img, description="a dog")
    assert ch.description is None and ch.description_kept and not ch.written
    assert xmp.read_sidecar(side).description == "Rex at Brighton, 2019"
    [ch] = xmp.update_sidecar(img, description="a dog", force=True)
    assert ch.description == "a dog" and exif(side)["XMP-dc:Description"] == "a dog"


def test_a_missing_tool_skips_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = "mcphotos-no-such-tool"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=missing):
        require_tool(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_tool(missing)
    assert require_tool("sh")  # a tool that is there is returned, CI or not


def test_sidecar_styles_are_plain_strings_and_an_unknown_style_is_a_usage_error(tmp_path: Path) -> None:
    from enum import Enum

    from mcphotos.errors import UsageError

    class XmpName(str, Enum):  # the CLI's own choice enum
        adobe = "adobe"

    assert [*xmp.SidecarStyle] == ["darktable", "adobe"]
    photo = tmp_path / "photo.jpg"
    assert xmp.new_sidecar_path(photo) == tmp_path / "photo.jpg.xmp"
    assert xmp.new_sidecar_path(photo, "adobe") == xmp.new_sidecar_path(photo, xmp.SidecarStyle.ADOBE) \
        == xmp.new_sidecar_path(photo, XmpName.adobe) == tmp_path / "photo.xmp"
    with pytest.raises(UsageError) as e:
        xmp.update_sidecar(photo, machine_tags=["dog"], style="lightroom")
    assert e.value.message == "unknown sidecar naming 'lightroom'"
    assert e.value.hint == "use darktable (photo.jpg.xmp) or adobe (photo.xmp)"
    assert not list(tmp_path.iterdir())

