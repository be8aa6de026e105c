"""The shared options (mcphotos.cli.options): declared once, the same everywhere, old spellings kept.

Every renamed flag still works for one release: the same stdout and exit code as its new
spelling, and exactly one extra line on stderr, ``mcphotos: warning: ...``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest
import typer
import typer.main
from typer.testing import Result

from mcphotos.cli import app
from mcphotos.cli.options import LibraryArgs, find_options, library_options, output_options
from mcphotos.errors import McPhotosError
from tests.support.cli import assert_light, runner
from tests.support.cocatiny import make_tiny_coca
from tests.support.photos import shape_photo

WARNING = "mcphotos: warning: "


def invoke(*args: object, input: bytes | str | None = None) -> Result:
    return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def assert_one_warning_more(old: Result, new: Result) -> str:
    """``old`` behaves as ``new`` plus exactly one deprecation line on stderr; that line is returned."""
    assert old.exit_code == new.exit_code, (old.output, new.output)
    assert old.stdout_bytes == new.stdout_bytes
    warnings = [ln for ln in lines(old.stderr) if ln.startswith(WARNING)]
    assert len(warnings) == 1, old.stderr
    assert [ln for ln in lines(old.stderr) if ln not in warnings] == lines(new.stderr)
    assert not any(ln.startswith(WARNING) for ln in lines(new.stderr)), new.stderr
    return warnings[0]


# typer brings its own copy of click: its groups and options are not click.Group and click.Option.


def command(*path: str) -> Any:
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


def all_commands(group: Any = None, prefix: tuple[str, ...] = ()):
    group = group or typer.main.get_command(app)
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from all_commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def options(cmd: Any) -> dict[str, Any]:
    """The command's shown parameters by their longest spelling (--store, --top ...), arguments by name."""
    return {max(p.opts, key=len) if p.param_type_name == "option" else p.name: p
            for p in cmd.params if not getattr(p, "hidden", False)}


def describe(p: Any) -> tuple[Any, ...]:
    return (type(p).__name__, p.name, tuple(sorted(p.opts)), tuple(p.secondary_opts), p.type_descriptor.annotation,
            p.multiple, p.nargs, p.required, getattr(p, "help", None), getattr(p, "metavar", None),
            getattr(p, "is_flag", None), getattr(p, "envvar", None), getattr(p, "min", None),
            getattr(p, "rich_help_panel", None))


# -- declared once: the same options wherever they appear -----------------------------------------

LIBRARY = ["--store", "--model", "--weights"]
ENGINE = ["--device", "--precision", "--engine"]
RUN_MODEL = [("index",), ("find",), ("status",), ("tag",), ("caption",), ("embed",), ("score",), ("album", "sync"),
             ("models", "prepare"), ("serve",)]


def test_find_and_album_save_accept_the_same_query_and_filters() -> None:
    find, save = options(command("find")), options(command("album", "save"))
    own_find = {"--sheet", "--columns", "--preview", "--json", "--paths", "--null", *LIBRARY, *ENGINE, "--help"}
    own_save = {"name", "--replace", *LIBRARY, "--help"}
    assert set(find) - own_find == set(save) - own_save
    shared = set(find) - own_find
    assert {"query", "--image", "--top", "--in", "--ext", "--after", "--before", "--tag", "--min-score",
            "--relative", "--auto-cut", "--contains"} == shared
    for key in shared:
        assert describe(find[key]) == describe(save[key]), key
        if key != "--top":  # a screenful for find, a folder of links for an album
            assert find[key].default == save[key].default, key
    assert (find["--top"].default, save["--top"].default) == (20, 200)


def test_every_command_has_the_whole_set_of_library_options() -> None:
    reference = options(command("find"))
    for path, cmd in all_commands():
        opts = options(cmd)
        has = [o for o in [*LIBRARY, *ENGINE] if o in opts]
        if not has:
            continue
        expected = LIBRARY + ENGINE if path in RUN_MODEL else LIBRARY
        assert has == expected, (path, has)
        for o in has:
            assert describe(opts[o]) == describe(reference[o]), (path, o)
    for path in RUN_MODEL:
        assert "--precision" in options(command(*path)), path


def test_tag_has_precision_and_every_device_has_a_precision() -> None:
    assert "--precision" in options(command("tag"))
    for path, cmd in all_commands():
        opts = options(cmd)
        assert ("--device" in opts) == ("--precision" in opts), path


def test_zero_means_nul_separated_output_wherever_it_is_shown() -> None:
    reference = describe(options(command("find"))["--null"])
    for path, cmd in all_commands():
        for p in cmd.params:
            if "-0" in p.opts and not getattr(p, "hidden", False):
                assert describe(p) == reference, path
    index_zero = [p for p in command("index").params if "-0" in p.opts]
    assert len(index_zero) == 1 and index_zero[0].hidden  # the old input spelling, for one release


def test_output_flags_are_the_same_everywhere() -> None:
    reference = options(command("find"))
    for path in (("find",), ("tag",), ("tags",), ("dedup",)):
        opts = options(command(*path))
        for o in ("--json", "--paths", "--null"):
            assert describe(opts[o]) == describe(reference[o]), (path, o)


# -- old spellings: still working, one warning line -----------------------------------------------


@pytest.fixture
def pics(tmp_path: Path) -> list[Path]:
    return [shape_photo(tmp_path / "pics" / "red circle.png", "red", "circle", seed=1),
            shape_photo(tmp_path / "pics" / "blue\nstar.png", "blue", "star", seed=2)]


def _index_json(r: Result) -> dict:
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    data.pop("elapsed")
    return data


@pytest.mark.parametrize("old", [["-", "-0"], ["-", "--null"], ["-0", "-"]])
def test_index_zero_still_reads_nul_separated_stdin(tmp_path: Path, pics: list[Path], tiny_args: list[str],
                                                     old: list[str]) -> None:
    listing = b"\0".join(os.fsencode(p) for p in pics) + b"\0"
    new = invoke("index", "--files0-from", "-", "--json", "-q", "--store", tmp_path / "new", *tiny_args,
                 input=listing)
    before = invoke("index", *old, "--json", "-q", "--store", tmp_path / "old", *tiny_args, input=listing)
    assert _index_json(new)["new"] == 2
    assert _index_json(before) == _index_json(new)
    assert lines(new.stderr) == []
    warning = lines(before.stderr)
    assert len(warning) == 1 and warning[0].startswith(WARNING) and "--files0-from -" in warning[0]


def test_index_files0_from_a_file_and_with_other_roots(tmp_path: Path, pics: list[Path], tiny_args: list[str]
                                                       ) -> None:
    listing = tmp_path / "list0"
    listing.write_bytes(os.fsencode(pics[1]) + b"\0")
    more = shape_photo(tmp_path / "more" / "green.png", "green", "square", seed=3)
    r = invoke("index", more.parent, "--files0-from", listing, "--json", "-q", "--store", tmp_path / "h", *tiny_args)
    assert _index_json(r)["new"] == 2 and r.stderr == ""
    # '-' (newline-separated) and --files0-from FILE together
    r = invoke("index", "-", "--files0-from", listing, "--json", "-q", "--store", tmp_path / "h2", *tiny_args,
               input=os.fsencode(pics[0]) + b"\n")
    assert _index_json(r)["new"] == 2


def test_untag_xmp_is_write_xmp(tmp_path: Path, tiny_args: list[str]) -> None:
    red = shape_photo(tmp_path / "pics" / "red.png", "red", "circle", seed=1)
    labels = tmp_path / "shapes.txt"
    labels.write_text("@background = a white square | a black star\nred/circle = a red circle\n"
                      "blue/star = a blue star\n")
    store = ["--store", tmp_path / "home", *tiny_args]
    assert invoke("index", red.parent, "-q", *store).exit_code == 0

    def untag(flag: str) -> Result:
        tagged = invoke("tag", "--labels", labels, "--write-xmp", "--single", "--min-prob", 0, "-q", *store)
        assert tagged.exit_code == 0 and "red/circle" in tagged.stdout, tagged.output
        assert "red" in (tmp_path / "pics" / "red.png.xmp").read_text()
        return invoke("untag", flag, *store)

    new = untag("--write-xmp")
    assert "removed 1 tags of 1 photos; 1 sidecars changed" in new.stderr
    old = untag("--xmp")
    assert "--write-xmp" in assert_one_warning_more(old, new)


def test_tag_takes_precision(tmp_path: Path, tiny_args: list[str]) -> None:
    red = shape_photo(tmp_path / "pics" / "red.png", "red", "circle", seed=1)
    labels = tmp_path / "shapes.txt"
    labels.write_text("red/circle = a red circle\nblue/star = a blue star\n")
    store = ["--store", tmp_path / "home", *tiny_args]
    assert invoke("index", red.parent, "-q", *store).exit_code == 0
    r = invoke("tag", "--labels", labels, "--device", "cpu", "--precision", "fp32", "--paths", "-q", *store)
    assert r.exit_code == 0 and r.stdout == f"{red}\n" and r.stderr == ""


@pytest.fixture(scope="module")
def tiny_coca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coca(tmp_path_factory.mktemp("coca"))


def _caption(photo: Path, *args: object) -> Result:
    return invoke("caption", photo, "--max-tokens", 8, "--json", "--refresh", "-q", *args)


def test_caption_old_weights_spellings(tmp_path: Path, tiny_coca: tuple[Path, Path], tiny_args: list[str]) -> None:
    cfg, coca = tiny_coca
    clip_model, clip = tiny_args[1], tiny_args[3]
    photo = shape_photo(tmp_path / "pics" / "red.png", "red", "circle", seed=1)
    base = [photo, "--captioner", cfg, "--model", clip_model, "--store", tmp_path / "home"]
    new = _caption(*base, "--captioner-weights", coca, "--weights", clip)
    assert new.exit_code == 0 and json.loads(new.stdout)["path"] == str(photo) and new.stderr == "", new.output
    # --weights COCA --clip-weights CLIP: the spelling of the last release
    old = _caption(*base, "--weights", coca, "--clip-weights", clip)
    assert "--captioner-weights COCA --weights CLIP" in assert_one_warning_more(old, new)
    # --clip-weights beside the new --captioner-weights
    old = _caption(*base, "--captioner-weights", coca, "--clip-weights", clip)
    assert_one_warning_more(old, new)


def test_caption_weights_alone_still_names_the_captioner(tmp_path: Path, tiny_coca: tuple[Path, Path]) -> None:
    cfg, coca = tiny_coca
    photo = shape_photo(tmp_path / "pics" / "red.png", "red", "circle", seed=1)
    base = [photo, "--captioner", cfg, "--store", tmp_path / "home"]
    # The captioner loads from COCA either way; the default CLIP model is not downloadable offline
    # (HF_HUB_OFFLINE=1 in tests), so both stop at the same one-line error, exit 1.
    new = _caption(*base, "--captioner-weights", coca)
    old = _caption(*base, "--weights", coca)
    assert new.exit_code == 1 and len(lines(new.stderr)) == 1, new.output
    assert "--captioner-weights" in assert_one_warning_more(old, new)


def test_caption_clip_weights_alone_still_names_the_clip_model(tmp_path: Path, tiny_args: list[str]) -> None:
    photo = shape_photo(tmp_path / "pics" / "red.png", "red", "circle", seed=1)
    base = [photo, "--model", tiny_args[1], "--store", tmp_path / "home"]
    new = _caption(*base, "--weights", tiny_args[3])  # (this release: --weights alone is the captioner's)
    old = _caption(*base, "--clip-weights", tiny_args[3])
    # The default captioner is not downloadable offline: one error line, exit 1, and the warning.
    assert old.exit_code == 1 and old.stdout == ""
    warnings = [ln for ln in lines(old.stderr) if ln.startswith(WARNING)]
    assert len(warnings) == 1 and "--clip-weights" in warnings[0] and len(lines(old.stderr)) == 2, old.stderr
    assert any(ln.startswith(WARNING) and "--captioner-weights" in ln for ln in lines(new.stderr))


def test_caption_two_clip_checkpoints_is_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "w.pt"
    f.write_bytes(b"x")
    r = runner.invoke(app, ["caption", str(tmp_path), "--captioner-weights", str(f), "--weights", str(f),
                            "--clip-weights", str(f)])
    assert r.exit_code == 2 and "both name the CLIP checkpoint" in r.output


# -- exit codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["index"],  # nothing to index
    ["index", "-", "--files0-from", "-"],  # one stdin, two lists
    ["index", "--files0-from", "/no/such/list"],
    ["index", "-0"],  # the old spelling still warns, and there is still nothing to index
    ["find", "x", "--json", "-0"],
    ["find"],  # nothing to search for
    ["album", "save", "a", "x", "-k", "0"],
    ["tags", "x", "--paths", "--null"],
    ["status", "--store"],
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    r = runner.invoke(app, args, input=b"")
    assert r.exit_code == 2, r.output
    assert r.stdout == ""


def test_failures_exit_1_and_success_0(tmp_path: Path) -> None:
    r = invoke("find", "x", "--store", tmp_path)
    assert r.exit_code == 1 and len(lines(r.stderr)) == 1 and r.stderr.startswith("mcphotos: error: no store")
    r = invoke("untag", "--xmp", "--store", tmp_path)
    assert r.exit_code == 1 and [ln.split(":")[1] for ln in lines(r.stderr)] == [" warning", " error"]
    r = invoke("status", "--json", "--store", tmp_path, "--device", "cpu", "--precision", "fp16")
    assert r.exit_code == 0 and json.loads(r.stdout)["precision"] == "fp16" and r.stderr == ""


def test_help_and_status_with_every_library_option_import_no_torch(tmp_path: Path) -> None:
    assert_light(tmp_path, ["status", "--device", "cpu", "--precision", "fp16", "--json"], ["tag", "--help"],
                 ["caption", "--help"], ["album", "save", "--help"], ["untag", "--help"], ["dedup", "--help"],
                 ["tags", "--help"])


# -- the decorators themselves ---------------------------------------------------------------------


class FakeLibrary:
    opened: ClassVar[list[FakeLibrary]] = []

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.closed = False
        FakeLibrary.opened.append(self)

    def __enter__(self) -> FakeLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


def toy_app() -> typer.Typer:
    from mcphotos.cli.common import handle_errors

    toy = typer.Typer()

    @toy.command("run")
    @handle_errors
    @find_options(top=7)
    @output_options
    @library_options
    def run(fail: bool = False, *, spec: Any, fmt: Any, lib: Any) -> None:
        typer.echo(json.dumps({"k": spec.k, "text": spec.text, "fmt": fmt.value, "args": list(lib.args)}))
        if fail:
            raise McPhotosError("it failed")

    @toy.command("args")
    @library_options(runs_model=False)
    def args(*, lib_args: LibraryArgs) -> None:
        typer.echo(json.dumps([lib_args.store, lib_args.model, lib_args.device]))

    return toy


def test_the_library_is_opened_with_the_options_and_closed_after(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setattr("mcphotos.cli.options.make_library", FakeLibrary)
    FakeLibrary.opened = []
    toy = toy_app()
    r = runner.invoke(toy, ["run", "sunset", "--paths", "-m", "S2", "--device", "cpu", "--store", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"k": 7, "text": "sunset", "fmt": "paths",
                                    "args": [str(tmp_path), "S2", None, "cpu", "auto", "auto"]}
    assert len(FakeLibrary.opened) == 1 and FakeLibrary.opened[0].closed
    r = runner.invoke(toy, ["run", "sunset", "--fail"])
    assert r.exit_code == 1 and "it failed" in r.stderr and FakeLibrary.opened[-1].closed
    r = runner.invoke(toy, ["run"])  # the query is checked before the library opens
    assert r.exit_code == 2 and len(FakeLibrary.opened) == 2
    monkeypatch.setenv("MCPHOTOS_HOME", str(tmp_path / "env"))
    r = runner.invoke(toy, ["args", "--model", "B"])
    assert json.loads(r.stdout) == [str(tmp_path / "env"), "B", None]
    assert runner.invoke(toy, ["args", "--device", "cpu"]).exit_code == 2  # runs_model=False: no --device


def test_a_command_without_its_placeholder_or_with_a_clash_is_refused() -> None:
    def no_placeholder(x: int = 1) -> None: ...

    def clash(store: str = "", *, lib: Any) -> None: ...

    with pytest.raises(TypeError, match="'lib'"):
        library_options(no_placeholder)
    with pytest.raises(TypeError, match="store"):
        library_options(clash)
