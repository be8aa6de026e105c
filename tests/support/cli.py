"""The one way tests run the command line: typer's ``CliRunner`` on the real app.

``runner`` is shared by every test module; ``invoke`` runs a command, lets exceptions
through (a crash is never mistaken for empty output) and checks the exit code. The ``cli``
fixture in conftest.py hands ``invoke`` to a test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

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


def assert_light(home: Path, *commands: list[str]) -> None:
    """Each command exits 0 in a fresh interpreter that, at the end, has imported no torch."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from mcphotos.cli import app\n"
        "r = CliRunner()\n"
        f"for args in {commands!r}:\n"
        "    res = r.invoke(app, args)\n"
        "    assert res.exit_code == 0, (args, res.output)\n"
        "bad = [m for m in ('torch', 'open_clip', 'timm') if m in sys.modules]\n"
        "print('HEAVY' if bad else 'LIGHT', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MCPHOTOS_HOME": str(home)})
    assert out.stdout.startswith("LIGHT"), out.stdout + out.stderr
