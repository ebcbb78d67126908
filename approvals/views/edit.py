"""Edit, then approve: the args form, the edit previewed as a diff through the tool's contract and policy,
and the approval of exactly the previewed args (signed between the two steps)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from adapters import errors as adapter_errors
from adapters import registry
from approvals import errors, services
from approvals.forms import ApproveForm, ArgsForm
from approvals.models import Proposal, Status
from approvals.reveal import reveal_json
from approvals.views.base import _forbidden, _person, _visible, _where
from approvals.views.decide import approved_message
from approvals.views.review import _conflict, diff_rows

EDIT_EXPIRED = "The edit could not be confirmed (it was changed or is too old); please review it again."
EDIT_SALT = "approvals.edit"
EDIT_MAX_AGE = 3600


@login_required
def proposal_edit(request: HttpRequest, pk: Any) -> HttpResponse:
    """Step 1 (GET): the args form. Step 2 (POST ``step=preview``): validate through the tool's contract and
    policy and show the edit as a diff. Step 3 (POST ``step=confirm``): approve exactly the previewed args."""
    proposal = _visible(request, pk)
    try:
        services.require_reviewer(proposal, _person(request))
    except errors.NotAllowed as exc:
        return _forbidden(request, exc.detail)
    if proposal.status != Status.PENDING:
        return _conflict(request, pk)
    tool = registry.get(proposal.tool)
    context: dict[str, Any] = {"proposal": proposal}
    step = request.POST.get("step") if request.method == "POST" else None
    if step == "confirm":
        return _edit_confirm(request, proposal, tool)
    if step == "preview":
        form = ArgsForm(tool, request.POST)
        form.is_valid()
        try:
            prepared = registry.prepare(proposal.tool, form.raw_args(), services.edit_context(proposal.agent))
        except adapter_errors.InvalidArgs as exc:
            form.add_contract_errors(exc.errors)
        except adapter_errors.PolicyDenied as exc:
            form.add_error(None, f"Refused by policy ({exc.policy}): {exc.detail}")
        except adapter_errors.DownstreamError as exc:
            # The preview of an update reads the live record: the outside system is down or refused the read.
            form.add_error(None, _downstream_message(exc))
            context["form"] = form
            return render(request, "approvals/edit.html", context, status=503)
        else:
            context.update(
                {
                    "prepared": prepared,
                    "edits": diff_rows(services.args_changes(proposal.args, prepared.args)),
                    "new_changes": diff_rows(prepared.preview.changes),
                    "new_notes": prepared.preview.notes,
                    # The snapshot is the state of the target this preview showed: the approval must find it
                    # unchanged (services.proposal_approve), or the reviewer approved a diff that no longer holds.
                    "signed_args": signing.dumps(
                        {
                            "pk": str(proposal.pk),
                            "from": proposal.args_hash,
                            "args": prepared.args,
                            "snapshot": prepared.preview.snapshot or {},
                        },
                        salt=EDIT_SALT,
                    ),
                    "args_json": reveal_json(prepared.args),
                    "approve_form": ApproveForm(initial={"comment": request.POST.get("comment", "")}),
                }
            )
        context["form"] = form
        return render(request, "approvals/edit.html", context, status=200 if "prepared" in context else 400)
    context["form"] = ArgsForm(tool, current=proposal.args)
    return render(request, "approvals/edit.html", context)


def _downstream_message(exc: adapter_errors.DownstreamError) -> str:
    return (
        f"The outside system could not be read to preview the edit ({exc}). Nothing was approved; try again."
    )


def _edit_confirm(request: HttpRequest, proposal: Proposal, tool: registry.Tool) -> HttpResponse:
    try:
        signed = signing.loads(request.POST.get("signed_args", ""), salt=EDIT_SALT, max_age=EDIT_MAX_AGE)
    except signing.BadSignature:
        signed = None
    if not signed or signed.get("pk") != str(proposal.pk) or signed.get("from") != proposal.args_hash:
        messages.error(request, EDIT_EXPIRED)
        return redirect("proposal-edit", pk=proposal.pk)
    form = ApproveForm(request.POST)
    comment = form.cleaned_data["comment"] if form.is_valid() else ""
    try:
        # The service re-validates the args through the same contract and policy, and records the edit.
        approved = services.proposal_approve(
            proposal=proposal,
            reviewer=_person(request),
            where=_where(request),
            comment=comment,
            args=signed["args"],
            seen_snapshot=signed.get("snapshot"),
        )
    except errors.NotAllowed as exc:
        return _forbidden(request, exc.detail)
    except (errors.AgentRevoked, errors.AlreadyApproved) as exc:
        return _conflict(request, proposal.pk, exc.detail)
    except errors.InvalidTransition:
        return _conflict(request, proposal.pk)
    except (
        adapter_errors.InvalidArgs,
        adapter_errors.PolicyDenied,
        errors.TargetChanged,
        adapter_errors.DownstreamError,
    ) as exc:
        # The edit was checked again at the confirmation and failed: nothing was recorded. Back to the form
        # with the reviewer's edits, to preview them again.
        if isinstance(exc, errors.TargetChanged):
            text, status = exc.detail, 409
        elif isinstance(exc, adapter_errors.DownstreamError):
            text, status = _downstream_message(exc), 503
        else:
            text, status = f"The edit no longer passes the tool's checks: {exc}", 400
        messages.error(request, text)
        form_again = ArgsForm(tool, current=signed["args"])
        return render(
            request, "approvals/edit.html", {"proposal": proposal, "form": form_again}, status=status
        )
    messages.success(
        request, approved_message(approved, "Approved with your edits. A worker is committing it now.")
    )
    return redirect("proposal-review", pk=proposal.pk)
