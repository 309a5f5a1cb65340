"""Safe model choice: a job may only name a model from the allowlist (by default the
models the server already has), never a path; GET /api/models lists them."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.api.conftest import MEDIA_URL, StartApi


def _job(model: str) -> dict[str, object]:
    return {"source": {"url": MEDIA_URL}, "options": {"model": model}}


@pytest.mark.parametrize("model", ["/etc", "/opt/models/base", "../models/base", "large-v3"])
def test_paths_and_unlisted_models_get_422_at_submit(admin: httpx.Client, model: str) -> None:
    before = admin.get("/api/jobs").json()["items"]
    answer = admin.post("/api/jobs", json=_job(model))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "model_not_allowed"
    assert "base" in error["message"]  # the allowed names are named
    assert admin.get("/api/jobs").json()["items"] == before  # nothing was created


def test_the_default_model_is_accepted_and_listed(admin: httpx.Client) -> None:
    assert admin.post("/api/jobs", json=_job("base")).status_code == 202
    listed = admin.get("/api/models").json()["models"]
    assert {"name": "base", "default": True} in listed


def test_the_allowlist_setting_decides(start_api: StartApi) -> None:
    live = start_api(model_allowlist=["base", "large-v3"])
    with live.client() as admin:
        assert admin.post("/api/jobs", json=_job("large-v3")).status_code == 202
        assert admin.post("/api/jobs", json=_job("small")).status_code == 422
        # A path is refused even if someone lists it.
        names = [m["name"] for m in admin.get("/api/models").json()["models"]]
        assert names == ["base", "large-v3"]
