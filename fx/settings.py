"""FX configuration models (the ``[fx]`` section of ``config/gateway.toml``).

Placeholder shape; the FX module owns and extends it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FXSettings(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    pivot: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    quote_ttl_s: int = Field(default=60, ge=1, le=3600)
    extra_sections: dict[str, Any] = Field(default_factory=dict)
