"""The CLI as a user meets it: help, exit codes, output formats, model loading, no heavy imports."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mcphotos.cli import app
from tests.support.cli import assert_light, runner
from tests.support.photos import photo


def invoke(*args: str, input: bytes | str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if hasattr(cmd, "commands"):  # typer's groups are its own click's, not click.Group
            yield from all_commands(cmd, (*prefix, name))


def test_every_command_has_help_text() -> None:
    import typer.main

    group = typer.main.get_command(app)
    missing = [" ".join(path) for path, cmd in all_commands(group) if not (cmd.help or "").strip()]
    assert not missing, f"commands without help: {missing}"
    for path, _ in all_commands(group):
        r = invoke(*path, "--help")
        assert r.exit_code == 0, path


def test_commands_without_a_model_do_not_import_torch(tmp_path: Path) -> None:
    assert_light(tmp_path, ["--help"], ["status"], ["status", "--json"], ["index", "--help"], ["find", "--help"])


def test_status_on_an_empty_home(home: Path) -> None:
    r = invoke("status", "--json")
    data = json.loads(r.stdout)
    assert data["exists"] is False and data["model"] == "MobileCLIP2-S0" and data["source"] == "dfndr2b"
    assert str(home) in data["store"]


def test_missing_weights_file_is_a_usage_error(tmp_path: Path) -> None:
    r = runner.invoke(app, ["index", str(tmp_path), "--weights", str(tmp_path / "nope.pt")])
    assert r.exit_code == 2
    assert "weights file not found" in r.output


def test_wrong_checkpoint_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    photo(tmp_path / "pics" / "a.png")
    r = runner.invoke(app, ["index", str(tmp_path / "pics"), "--weights", str(bad), "-q"])
    assert r.exit_code == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mcphotos: error: cannot load weights"), r.stderr
    assert "Traceback" not in r.output


def test_no_network_download_failure_is_one_clear_line(tmp_path: Path) -> None:
    photo(tmp_path / "pics" / "a.png")
    r = runner.invoke(app, ["index", str(tmp_path / "pics"), "-q"])  # HF_HUB_OFFLINE=1 in tests
    assert r.exit_code == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--weights" in lines[0], r.stderr


def test_unknown_model_is_reported(tmp_path: Path) -> None:
    photo(tmp_path / "pics" / "a.png")
    r = runner.invoke(app, ["index", str(tmp_path / "pics"), "--model", "NoSuchModel-X", "-q"])
    assert r.exit_code == 1 and "unknown model" in r.stderr


def test_output_flags_are_exclusive() -> None:
    r = runner.invoke(app, ["find", "x", "--json", "--paths"])
    assert r.exit_code == 2
