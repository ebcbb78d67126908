"""The inbox's "For you" section: the pending proposals waiting for this reviewer (``selectors.for_you``:
routed to a group they are in or to nobody, handed to them or to nobody in particular, not snoozed by them,
not already approved by them), similar ones grouped together.

Similar means the same tool, the same agent and the same target record (the preview's target, as the review
page's ``_target`` reads it; creates have none): a reviewer going through twenty such proposals sees, per
group, only the fields whose values differ between them. Each row carries its args hash for the bulk form
(``approvals.views.bulk``): a bulk verdict applies to the args the reviewer had on screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from approvals import rules, selectors
from approvals.models import Proposal, Status
from approvals.views.review import _display, _target, quorum

# At most this many proposals in the section (the oldest first); the list below has them all.
FOR_YOU_SHOWN = 50
# A differing value is cut to this many characters in the group's rows (the review page shows it whole).
VALUE_SHOWN = 80


@dataclass
class Similar:
    """Proposals of one tool, one agent and one target; ``differs``: the args fields whose values are not
    the same in all of them (empty for a group of one)."""

    tool: str
    agent: str
    target: str
    rows: list[Proposal] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)


def _key(proposal: Proposal) -> tuple[str, int, str]:
    target = _target(proposal.preview or {})
    return proposal.tool, proposal.agent_id, str(target["key"]) if target else ""


def _differing(rows: list[Proposal]) -> list[str]:
    if len(rows) < 2:
        return []
    names = sorted({name for row in rows for name in (row.args or {})})
    return [name for name in names if len({_display((row.args or {}).get(name)) for row in rows}) > 1]


def for_you_groups(person: User, selection: QuerySet[Proposal]) -> tuple[list[Similar], int]:
    """The section's groups, in the order of their oldest proposal, and how many rows it shows."""
    rows = list(
        selectors.for_you(person, selection.filter(status=Status.PENDING))
        .select_related("agent", "review_group", "assignee")
        .order_by("created_at", "id")[:FOR_YOU_SHOWN]
    )
    groups: dict[tuple[str, int, str], Similar] = {}
    for row in rows:
        key = _key(row)
        if key not in groups:
            target = _target(row.preview or {})
            groups[key] = Similar(
                tool=row.tool,
                agent=row.agent.name,
                target=str(target.get("id") or target["key"]) if target else "",
            )
        groups[key].rows.append(row)
    quorum_rows(rows)
    for group in groups.values():
        group.differs = _differing(group.rows)
        for row in group.rows:
            row.differences = [  # type: ignore[attr-defined]
                {"field": name, "value": _shorten(_display((row.args or {}).get(name)))}
                for name in group.differs
            ]
    return list(groups.values()), len(rows)


def _shorten(text: str) -> str:
    return text if len(text) <= VALUE_SHOWN else text[: VALUE_SHOWN - 1] + "…"


def quorum_rows(rows: list[Any]) -> None:
    """Set ``row.quorum`` ("1 of 2 approvals", who) on the pending rows whose rule asks for more than one
    approval: their approvals read in one query (``rules.counted_approvals_of``), none when there are none."""
    several = [row for row in rows if row.status == Status.PENDING and row.approvals_required > 1]
    counted = rules.counted_approvals_of(several) if several else {}
    for row in rows:
        row.quorum = quorum(row, counted[row.pk]) if row.pk in counted else None
