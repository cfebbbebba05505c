"""The one base every configuration model derives from: strict, so a misspelt key is an error, not a silent default."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """A config block: unknown keys are refused, and field names may start with ``model_`` (``model``, ``model_type``)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


__all__ = ["Settings"]
