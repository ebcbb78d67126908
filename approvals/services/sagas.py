"""The saga runner: a multi-step tool's steps run one by one, each persisted as it completes; a step that fails
for good has the earlier writes compensated, newest first."""

from __future__ import annotations

from django.db import transaction

from adapters import errors as adapter_errors
from adapters import registry
from approvals.models import (
    Proposal,
    SagaStep,
)
from approvals.services.base import _audit_proposal
from audit import services as audit


class SagaFailed(Exception):
    """A step of a multi-step proposal failed for good; earlier writes were compensated."""

    def __init__(
        self, step: str, error: str, ran: list[str], undone: list[str], not_undone: list[str]
    ) -> None:
        parts = [
            f"Step '{step}' failed: {error}",
            f"Ran: {', '.join(ran) or 'nothing'}",
            f"Undone: {', '.join(undone) or 'nothing to undo'}",
        ]
        if not_undone:
            parts.append(f"Could not undo: {', '.join(not_undone)} (needs a person)")
        super().__init__(". ".join(parts) + ".")


def _run_steps(proposal: Proposal) -> registry.Outcome:
    """Run a multi-step tool: each step's result is persisted as it completes, so a crash resumes at the next
    step; a step that fails for good has the earlier writes compensated, newest first."""
    tool = registry.get(proposal.tool)
    done = {s.index: s for s in SagaStep.objects.filter(proposal=proposal)}
    results = {s.name: s.result for s in done.values() if s.state == SagaStep.State.DONE}
    for index, step in enumerate(tool.steps):
        if index in done:
            continue
        try:
            result = registry.run_step(
                proposal.tool,
                proposal.args,
                index,
                results,
                idempotency_key=f"{proposal.crm_idempotency_key}-step-{index}",
                tenant=proposal.tenant.slug,
                snapshot=(proposal.preview or {}).get("snapshot") or {},
            )
        except (
            adapter_errors.TransientFailure,
            adapter_errors.PermanentFailure,
            adapter_errors.StaleTarget,
        ) as exc:
            undone, not_undone = _compensate(proposal, before=index)
            raise SagaFailed(
                step.name, str(exc), [s.name for s in tool.steps[:index]], undone, not_undone
            ) from exc
        with transaction.atomic():
            SagaStep.objects.create(
                proposal=proposal, index=index, name=step.name, state=SagaStep.State.DONE, result=result
            )
            _audit_proposal(
                proposal,
                actor=audit.SYSTEM,
                action="saga.step_done",
                where=audit.WORKER,
                data={"step": step.name, "index": index},
            )
        results[step.name] = result
    return registry.Outcome(
        system=tool.system,
        external_id=str(proposal.pk),
        summary={"steps": [{"name": s.name, "result": results.get(s.name)} for s in tool.steps]},
    )


def _compensate(proposal: Proposal, *, before: int) -> tuple[list[str], list[str]]:
    undone: list[str] = []
    not_undone: list[str] = []
    steps = SagaStep.objects.filter(proposal=proposal, index__lt=before, state=SagaStep.State.DONE).order_by(
        "-index"
    )
    for saga_step in steps:
        try:
            compensated = registry.compensate_step(
                proposal.tool, proposal.args, saga_step.index, saga_step.result, tenant=proposal.tenant.slug
            )
        except Exception as exc:
            saga_step.state, saga_step.error = SagaStep.State.COMPENSATION_FAILED, str(exc)[:1000]
            not_undone.append(saga_step.name)
        else:
            if not compensated:
                continue  # a read: nothing to undo
            saga_step.state = SagaStep.State.COMPENSATED
            undone.append(saga_step.name)
        with transaction.atomic():
            saga_step.save(update_fields=["state", "error", "updated_at"])
            _audit_proposal(
                proposal,
                actor=audit.SYSTEM,
                action="saga.step_compensated",
                where=audit.WORKER,
                result="ok" if saga_step.state == SagaStep.State.COMPENSATED else "error",
                data={"step": saga_step.name, "index": saga_step.index},
            )
    return undone, not_undone
