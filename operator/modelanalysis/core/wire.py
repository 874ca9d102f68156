"""The base of every model that travels as Kubernetes JSON (the spec, its parts)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Base for models that travel as Kubernetes JSON: camelCase names, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class OmitsEmptyNewFields(BaseModel):
    """A record that grew fields a record of an older kind never has (a streaming point's TTFT): they are left
    out of its JSON while empty, so what was written before reads and writes exactly as it always did."""

    OMITTED_WHEN_EMPTY: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_empty_new_fields(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name in self.OMITTED_WHEN_EMPTY:
                field = type(self).model_fields.get(name)
                for key in (name, field.alias if field is not None else None):
                    if key in data and data[key] is None:
                        del data[key]
        return data
