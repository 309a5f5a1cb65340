"""Corrections to the generated OpenAPI document where pydantic's JSON Schema is looser
or stricter than the validators it comes from, so clients (and schemathesis) see the
rules the server applies:

* ``Source``: exactly one of ``url`` (http/https) and ``upload_id`` (a model validator,
  invisible to JSON Schema) becomes a ``oneOf``;
* ``JobSpec.start``/``end``: seconds (start >= 0, end > 0) or ``[HH:]MM:SS[.mmm]``
  strings, as ``parse_timestamp`` accepts them.

What stays inexpressible (``end`` after ``start``, limits from settings, the SSRF
policy) is answered with 400/422 in the documented error shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

TIMESTAMP_PATTERN = r"^\s*(?:(?:[0-9]+:)?[0-9]{1,2}:)?[0-9]+(?:\.[0-9]+)?\s*$"
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://"


def refine(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.get("components", {}).get("schemas", {})
    source = schemas.get("Source")
    if source is not None:
        source["oneOf"] = [
            {
                "required": ["url"],
                "properties": {
                    "url": {"type": "string", "pattern": URL_PATTERN},
                    "upload_id": {"type": "null"},
                },
            },
            {
                "required": ["upload_id"],
                "properties": {"upload_id": {"type": "string"}, "url": {"type": "null"}},
            },
        ]
    spec = schemas.get("JobSpec")
    if spec is not None:
        timestamp = {"type": "string", "pattern": TIMESTAMP_PATTERN}
        for name, number in (
            ("start", {"type": "number", "minimum": 0}),
            ("end", {"type": "number", "exclusiveMinimum": 0}),
        ):
            spec["properties"][name]["anyOf"] = [number, timestamp, {"type": "null"}]
    return document


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = refine(generate())
        return app.openapi_schema

    # FastAPI's documented way to customise the document: replace the method.
    app.openapi = openapi  # type: ignore[method-assign]
