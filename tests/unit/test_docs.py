"""The README documents every setting and every CLI command that exists."""

from __future__ import annotations

from pathlib import Path

import typer

from reelscribe.cli import app
from reelscribe.config import Settings

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = [name for name in Settings.model_fields
               if f"`REELSCRIBE_{name.upper()}`" not in README]  # fmt: skip
    assert missing == []


def test_every_cli_command_is_in_the_readme() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    missing = [name for name in commands if f"reelscribe {name}" not in README]
    assert len(commands) >= 9
    assert missing == []
