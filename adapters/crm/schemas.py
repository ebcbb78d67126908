"""What the CRM tools accept from agents (strict args models) and what we accept from the CRM
(response models: unknown fields ignored, missing or mistyped ones are a malformed response)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.normalize import ArgsModel, CleanLine, CleanText, Email, Priority, Tags, TicketId, TicketStatus

Subject = Annotated[str, Field(min_length=1, max_length=200), CleanLine]
Description = Annotated[str, Field(min_length=1, max_length=10000), CleanText]

# --- Args (tool contracts) ---------------------------------------------------------------------------


class CreateTicketArgs(ArgsModel):
    subject: Subject = Field(description="One line, what is wrong.")
    description: Description = Field(description="The first comment of the ticket.")
    priority: Priority = "normal"
    customer_email: Email | None = Field(default=None, description="The requester; created if unknown.")
    tags: Tags | None = None


UPDATABLE_FIELDS = ("subject", "priority", "status", "tags", "comment")
NOTHING_TO_UPDATE = f"give at least one of: {', '.join(UPDATABLE_FIELDS)}"


class UpdateTicketArgs(ArgsModel):
    ticket_id: TicketId
    subject: Subject | None = None
    priority: Priority | None = None
    status: TicketStatus | None = None
    tags: Tags | None = Field(default=None, description="Replaces the ticket's tags.")
    comment: Description | None = Field(default=None, description="Added as a public comment.")

    @model_validator(mode="after")
    def _at_least_one_change(self) -> UpdateTicketArgs:
        if all(getattr(self, name) is None for name in UPDATABLE_FIELDS):
            raise ValueError(NOTHING_TO_UPDATE)
        return self


class GetCustomerArgs(ArgsModel):
    email: Email


# --- Responses (output adapters) ---------------------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Ticket(_Response):
    id: int
    subject: str | None = None
    description: str | None = None
    priority: str | None = None
    status: str
    requester_id: int | None = None
    tags: list[str] = Field(default_factory=list)
    created_at: str | None = None
    updated_at: str


class TicketEnvelope(_Response):
    ticket: Ticket
    # Sideloaded with ``?include=users`` (Zendesk's sideloading): the requester among them.
    users: list[User] = Field(default_factory=list)


class Comment(_Response):
    id: int
    body: str
    public: bool = True
    created_at: datetime


class CommentList(_Response):
    comments: list[Comment]


class User(_Response):
    id: int
    name: str | None = None
    email: str | None = None
    role: str | None = None
    created_at: str | None = None


class UserSearch(_Response):
    users: list[User]
    count: int | None = None

    def as_customers(self) -> dict[str, Any]:
        return {"customers": [u.model_dump(mode="json") for u in self.users]}
