"""serve: the local web app (search, duplicate review) over one store; see mcphotos/serve/."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Annotated

import typer

from mcphotos.cli.common import app, fail, handle_errors, print_warning
from mcphotos.cli.options import library_options

if TYPE_CHECKING:
    from mcphotos.library import Library

DEFAULT_PORT = 8765
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
@handle_errors
@library_options
def serve(
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535,
                                      help=f"TCP port (default {DEFAULT_PORT}, else a free one; 0: any free port).")
                    ] = DEFAULT_PORT,
    host: Annotated[str, typer.Option("--host", metavar="ADDR",
                                      help="Address to listen on (default 127.0.0.1; another one warns, and the "
                                           "token is still required).")] = "127.0.0.1",
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open the page in a browser.")] = False,
    quarantine: Annotated[str | None, typer.Option(
        "--quarantine", metavar="DIR",
        help="Where 'move' puts duplicates (relative paths kept; undo in the page or with `mcphotos undo`).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="One stderr line per request.")] = False,
    *,
    lib: Library,
) -> None:
    """Search and review duplicates in a web page on this computer.

    Prints the page's URL (with its one-time token) as the first line of stdout and opens it;
    Ctrl-C stops the server.
    """
    from mcphotos.serve import serve_support

    missing = serve_support()
    if missing:
        raise fail(missing, 1)
    from mcphotos.serve.server import ServeOptions
    from mcphotos.serve.server import serve as run_server

    if host not in LOOPBACK:
        print_warning(f"--host {host} makes your photos reachable from other computers on the network "
                      "(the token is still required; anyone who sees the URL can open them)")
    chosen = _free_port_fallback(host, port)
    options = ServeOptions(host=host, port=chosen, quarantine=quarantine, open_browser=not no_browser,
                           access_log=access_log)
    run_server(lib, options, on_ready=_print_url, on_warning=print_warning)


def _free_port_fallback(host: str, port: int) -> int:
    """``port``, or any free one when the default is taken (an explicit --port that is taken fails)."""
    from mcphotos.serve.server import bind

    try:
        bind(host, port).close()
    except OSError as e:
        if e.errno == errno.EADDRINUSE and port == DEFAULT_PORT:
            typer.echo(f"mcphotos: port {port} is in use; using a free one", err=True)
            return 0
        if e.errno == errno.EADDRINUSE:
            raise fail(f"error: port {port} is in use (pick another with --port N; 0 picks a free one)") from None
        raise fail(f"error: cannot listen on {host}:{port}: {e.strerror or e}") from None
    return port


def _print_url(url: str) -> None:
    typer.echo(url)  # the first line of stdout; everything else goes to stderr
    import sys

    sys.stdout.flush()
