"""The ``reelscribe`` command line: a thin edge over :mod:`reelscribe.pipeline.runner`.

Progress goes to stderr, results to stdout (``--json`` for scripts). Any error ends
the process with one readable line and a non-zero exit code: 2 for bad input (the
user's fault), 1 for everything else.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from reelscribe import __version__
from reelscribe.errors import ReelscribeError

app = typer.Typer(
    name="reelscribe",
    help="Fetch, clip, transcribe and subtitle media.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reelscribe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and turns every failure into one line on stderr."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="reelscribe", standalone_mode=False)
    except ReelscribeError as exc:
        print(f"reelscribe: error: {exc}", file=sys.stderr)
        return 2 if exc.user_fault else 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("reelscribe: aborted", file=sys.stderr)
        return 130
    except typer.exceptions.TyperException as exc:  # usage errors: bad or missing options
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        print(f"reelscribe: error: {message}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        print("reelscribe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("REELSCRIBE_DEBUG"):
            raise
        print(
            f"reelscribe: internal error: {type(exc).__name__}: {exc} "
            "(set REELSCRIBE_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1
    return int(result) if isinstance(result, int) else 0
