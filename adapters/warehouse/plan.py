"""The query plan: the only thing an agent sends (contract 5). Strict, closed (unknown keys refused).

Names (dataset, columns) are plain strings here: which ones exist is a fact of the warehouse, checked by
the compiler against the introspected schema, so that a refusal can list what *is* available.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    ValidationError,
)

from adapters.normalize import integral_number
from adapters.warehouse.errors import InvalidQuery, shown

OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "between", "like-prefix", "is_null")
AGGS = ("count", "sum", "avg", "min", "max")

Op = Literal["=", "!=", "<", "<=", ">", ">=", "in", "between", "like-prefix", "is_null"]
AggName = Literal["count", "sum", "avg", "min", "max"]
Name = Annotated[str, Field(min_length=1, max_length=64)]

_STRICT = ConfigDict(strict=True, extra="forbid", populate_by_name=False)


class Aggregate(BaseModel):
    model_config = _STRICT

    agg: AggName
    column: Name | None = Field(default=None, description="The column; may be left out for count (rows).")
    as_: str | None = Field(
        default=None,
        alias="as",
        max_length=63,
        description="The output column's name: letters, digits and _, not starting with a digit. "
        "Defaults to <agg>_<column> (or count).",
    )


def _select_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "<column>"
    if isinstance(value, dict | Aggregate):
        return "<aggregate>"
    return None


# A select item is a column name or an aggregate; the discriminator keeps errors to the branch meant.
SelectItem = Annotated[
    Annotated[Name, Tag("<column>")] | Annotated[Aggregate, Tag("<aggregate>")],
    Discriminator(
        _select_kind,
        custom_error_type="select_item",
        custom_error_message='A select item is a column name or {"agg", "column", "as"}.',
    ),
]


class Condition(BaseModel):
    model_config = _STRICT

    column: Name
    op: Op
    value: JsonValue = Field(
        default=None,
        description="Typed like the column: a number, a string, an ISO 8601 date or date-time. A list for "
        "`in`, [low, high] for `between`, a string for `like-prefix`, true/false for `is_null`.",
    )


class OrderBy(BaseModel):
    model_config = _STRICT

    column: Name = Field(description="A column, or the `as` name of an aggregate.")
    desc: bool = False


class Plan(BaseModel):
    """A warehouse query: dataset, selected columns and aggregates, filters, grouping, order and page.
    Rows always belong to the caller's tenant only."""

    model_config = ConfigDict(strict=True, extra="forbid", title="WarehouseQuery")

    dataset: Name = Field(
        description="orders, customers or tickets (GET /api/v1/queries/ lists the columns)."
    )
    select: list[SelectItem] = Field(min_length=1, max_length=32)
    where: list[Condition] = Field(default_factory=list, max_length=32)
    group_by: list[Name] = Field(default_factory=list, max_length=8)
    order_by: list[OrderBy] = Field(default_factory=list, max_length=4)
    limit: Annotated[int, Field(ge=1), BeforeValidator(integral_number)] = Field(
        default=100, description="Rows per page, at most 1000 unless configured otherwise."
    )
    cursor: str | None = Field(
        default=None, max_length=4096, description="The previous page's next_cursor, with the same plan."
    )

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# Union members that pydantic names in an error's location; not useful to the agent.
_UNION_TAGS = {"<column>", "<aggregate>"}


def _loc(parts: tuple[Any, ...]) -> list[str]:
    return [
        shown(p, 40) if isinstance(p, str) and not p.isidentifier() else str(p)
        for p in parts
        if p not in _UNION_TAGS
    ]


def parse(raw: Any) -> Plan:
    """Validate ``raw`` (the decoded JSON body) into a Plan, or raise InvalidQuery."""
    if not isinstance(raw, dict):
        raise InvalidQuery(
            detail="The query plan must be a JSON object.",
            errors=[{"loc": [], "msg": "must be a JSON object", "type": "dict_type"}],
        )
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> InvalidQuery:
    errors: list[dict[str, Any]] = []
    allowed: list[str] | None = None
    first = ""
    for e in exc.errors(include_url=False, include_context=True, include_input=True):
        loc = _loc(e["loc"])
        where = ".".join(loc) or "plan"
        if e["type"] == "literal_error":
            field_name = loc[-1] if loc else "value"
            choices = list(AGGS if field_name == "agg" else OPS)
            msg = f"Unknown {field_name} {shown(e.get('input'))}; allowed: {', '.join(choices)}."
            allowed = allowed or choices
        elif e["type"] == "extra_forbidden":
            msg = f"Unknown field {loc[-1] if loc else ''}."
        else:
            msg = str(e["msg"])
        errors.append({"loc": loc, "msg": msg, "type": e["type"]})
        if not first:
            first = f"{where}: {msg}"
    return InvalidQuery(detail=f"The query plan is not valid: {first}", errors=errors[:20], allowed=allowed)
