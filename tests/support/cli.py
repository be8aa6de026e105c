"""The one way tests run the command line: typer's ``CliRunner`` on the real app.

``runner`` is shared by every test module; ``invoke`` runs a command, lets exceptions
through (a crash is never mistaken for empty output) and checks the exit code. The ``cli``
fixture in conftest.py hands ``invoke`` to a test.
"""

from __future__ import annotations

from collections.abc import Mapping

from typer.testing import CliRunner, Result

from mcphotos.cli import app

runner = CliRunner()


def invoke(*args: object, input: bytes | str | None = None, code: int | None = 0,
           env: Mapping[str, str | None] | None = None) -> Result:
    """Run ``mcphotos ARGS``; ``code``: the exit status expected (None: any)."""
    r = runner.invoke(app, [str(a) for a in args], input=input, env=env, catch_exceptions=False)
    if code is not None:
        assert r.exit_code == code, f"exit {r.exit_code}, expected {code}: {r.output}"
    return r
