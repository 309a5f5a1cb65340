"""The HTTP edge of the service: routes by resource, schemas, error mapping.

Only this package knows about HTTP; the rules live in :mod:`reelscribe.service`.
"""

from reelscribe.api.app import create_app

__all__ = ["create_app"]
