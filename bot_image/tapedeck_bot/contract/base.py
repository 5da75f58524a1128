"""The base model of the contract: camelCase on the wire, strict about unknown fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, JsonValue
from pydantic.alias_generators import to_camel

__all__ = ["CamelModel", "cel"]

M = TypeVar("M", bound=type[BaseModel])


class CamelModel(BaseModel):
    """Fields are snake_case in Python and camelCase in the Kubernetes object.

    Unknown fields are refused, as the API server's structural schema prunes them: a typo
    must fail loudly rather than be silently dropped.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it goes to the API server: camelCase, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def cel(rule: str, message: str) -> Callable[[M], M]:
    """Attach a CEL `x-kubernetes-validations` rule to a model's CRD schema.

    The rule is enforced by the API server; the model keeps a pydantic validator with the
    same message so that both layers reject the same input.
    """

    def attach(model: M) -> M:
        extra = model.model_config.get("json_schema_extra")
        existing = extra.get("x-kubernetes-validations") if isinstance(extra, dict) else None
        rules: list[JsonValue] = list(existing) if isinstance(existing, list) else []
        rules.append({"rule": rule, "message": message})
        model.model_config["json_schema_extra"] = {"x-kubernetes-validations": rules}
        return model

    return attach
