"""The base of the models that read what people write (the policy file and its sections):
unknown keys are mistakes to name, never to ignore, and a read policy does not change."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
