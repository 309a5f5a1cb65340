"""The worker's view of the service: :class:`Hub`, local or over HTTP (see :mod:`.base`)."""

from reelscribe.hub.base import Hub, StepEvent, result_key

__all__ = ["Hub", "StepEvent", "result_key"]
