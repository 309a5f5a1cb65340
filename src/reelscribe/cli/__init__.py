"""The ``reelscribe`` command line: a thin edge over :mod:`reelscribe.pipeline.runner`.

One module per kind of command: ``local`` (the pipeline in this process), ``service``
(the long-running processes), ``submit`` (a job sent to a running service); the flags
they share are in ``options``, the Typer app and the entry point in ``app``.
"""

from __future__ import annotations

# Importing the command modules registers their commands on ``app``, in this order.
from reelscribe.cli import estimate, local, separation, service, submit
from reelscribe.cli.app import app, main

__all__ = ["app", "estimate", "local", "main", "separation", "service", "submit"]
