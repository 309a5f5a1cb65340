"""``reelscribe separation``: the vocal separation backend's environment (build, check)."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from reelscribe.cli.app import app
from reelscribe.cli.options import JsonOpt
from reelscribe.config import get_settings

separation_app = typer.Typer(
    help="The vocal separation backend: build its environment ahead of time, or check it.",
    no_args_is_help=True,
)
app.add_typer(separation_app, name="separation")


@separation_app.command("install")
def separation_install(
    as_json: JsonOpt = False,
) -> None:
    """Build the Spleeter virtualenv now (TensorFlow 2.12, ~2.4 GB; minutes), not in the
    first job that asks for --separate. Needs pip to reach PyPI or a mirror, once."""
    from reelscribe.separation.spleeter_env import ensure_env, env_root

    settings = get_settings()
    env = ensure_env(env_root(settings), settings.separation_python,
                     log=lambda line: print(line, file=sys.stderr))  # fmt: skip
    info = {"path": str(env.path), **env.info()}
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        typer.echo(f"spleeter\t{env.path}")


@separation_app.command("status")
def separation_status(as_json: JsonOpt = False) -> None:
    """Which separation backend is set, and whether the Spleeter env is built."""
    from reelscribe.separation.spleeter_env import SpleeterEnv, env_path, env_root

    settings = get_settings()
    env = SpleeterEnv(env_path(env_root(settings)))
    info: dict[str, Any] = {"backend": settings.separation_backend, "spleeter_env": str(env.path),
                            "spleeter_ready": env.ready}  # fmt: skip
    if env.ready:
        info["spleeter"] = env.info()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        for key in ("backend", "spleeter_env", "spleeter_ready"):
            typer.echo(f"{key}\t{info[key]}")
