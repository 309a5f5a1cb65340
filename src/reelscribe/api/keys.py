"""``/api/keys``: API keys, for admins. A key's secret is returned once, on creation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from reelscribe.api.deps import AdminKey, KeysDep
from reelscribe.api.errors import error_responses
from reelscribe.api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from reelscribe.service.auth import ApiKey

router = APIRouter(
    prefix="/api/keys", tags=["keys"], responses=error_responses(400, 401, 403, 422, 429)
)
KeyId = Annotated[str, Path(min_length=1, max_length=64, description="The key id")]


def key_public(key: ApiKey) -> ApiKeyPublic:
    assert key.id is not None  # stored keys have ids; only the anonymous caller has none
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        scopes=sorted(key.scopes),
        rate_limit_per_minute=key.rate_limit_per_minute,
        quota_audio_minutes_per_day=key.quota_audio_minutes_per_day,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@router.post("", status_code=201, summary="Create an API key")
async def create_key(body: ApiKeyCreate, admin: AdminKey, keys: KeysDep) -> ApiKeyCreated:
    key, secret = await keys.create(
        body.name,
        body.scopes,
        rate_limit_per_minute=body.rate_limit_per_minute,
        quota_audio_minutes_per_day=body.quota_audio_minutes_per_day,
    )
    return ApiKeyCreated(**key_public(key).model_dump(), secret=secret)


@router.get("", summary="List API keys (without secrets)")
async def list_keys(admin: AdminKey, keys: KeysDep) -> list[ApiKeyPublic]:
    return [key_public(key) for key in await keys.list_keys()]


@router.delete("/{key_id}", summary="Revoke an API key", responses=error_responses(404))
async def revoke_key(key_id: KeyId, admin: AdminKey, keys: KeysDep) -> ApiKeyPublic:
    return key_public(await keys.revoke(key_id))
