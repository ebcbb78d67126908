"""Policy rules stored as data (ToolPolicy), enforced through the REST API and edited in the admin."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from adapters import policy
from approvals.accounts import agent_create
from approvals.models import Proposal, ToolPolicy
from audit.models import AuditEvent

TICKET = {
    "subject": "Printer on fire",
    "description": "Smoke from the printer on floor 3.",
    "priority": "high",
    "customer_email": "Alice@Example.com",
}


def submit(client: Any, args: dict[str, Any] | None = None, tool: str = "crm.create_ticket", **changes: Any):
    body = {"tool": tool, "args": {**(args if args is not None else TICKET), **changes}, "rationale": "asked"}
    return client.post("/api/v1/proposals/", body, format="json")


def rule(party: Any, **fields: Any) -> ToolPolicy:
    fields.setdefault("name", "support-limits")
    fields.setdefault("tool", "crm.create_ticket")
    return ToolPolicy.objects.create(tenant=party.tenant, **fields)


def age(proposal_id: str, seconds: float) -> None:
    Proposal.objects.filter(pk=proposal_id).update(created_at=timezone.now() - timedelta(seconds=seconds))


@pytest.mark.django_db
class TestContentRules:
    def test_a_stored_rule_denies_with_403_its_name_and_an_actionable_sentence(self, acme):
        rule(acme, allowed_fields=["subject", "description"], description="Agents may not set priority.")

        response = submit(acme.agent_client)

        assert response.status_code == 403, response.content
        body = response.json()
        assert body["error"] == "policy_denied"
        assert body["policy"] == "support-limits"
        assert body["check"] == policy.ALLOWED_FIELDS
        assert body["detail"] == policy.FIELD_NOT_ALLOWED.format(
            field="priority", tool="crm.create_ticket", allowed="subject, description"
        )
        assert not Proposal.objects.exists()
        denial = AuditEvent.objects.get(action="proposal.denied")
        assert (denial.result, denial.data["policy"]) == ("denied", "support-limits")
        # acting on the sentence gets the proposal through
        assert (
            submit(acme.agent_client, {"subject": "Printer on fire", "description": "Smoke."}).status_code
            == 201
        )

    def test_max_items_per_call(self, acme):
        rule(acme, max_items=2)

        response = submit(acme.agent_client, tags=["printer", "fire", "floor-3"])

        assert response.status_code == 403
        assert (response.json()["policy"], response.json()["check"]) == ("support-limits", policy.MAX_ITEMS)
        assert submit(acme.agent_client, tags=["printer", "fire"]).status_code == 201

    def test_a_card_number_in_the_description_is_refused_without_any_rule(self, acme):
        response = submit(acme.agent_client, description="Refund the card 4111-1111-1111-1111 please.")

        assert response.status_code == 403
        body = response.json()
        assert (body["error"], body["policy"], body["check"]) == (
            "policy_denied",
            "default",
            policy.CARD_NUMBER,
        )
        assert "'description'" in body["detail"]
        assert "4111" not in response.content.decode()
        assert "4111" not in json.dumps(AuditEvent.objects.get(action="proposal.denied").data)

    def test_a_tenant_can_switch_the_card_rule_off(self, acme):
        rule(acme, tool="*", refuse_card_numbers=False)

        assert submit(acme.agent_client, description="Test card 4111 1111 1111 1111.").status_code == 201

    def test_an_email_in_customer_email_and_a_phone_in_text_are_allowed(self, acme):
        response = submit(
            acme.agent_client,
            customer_email="Bob.Smith+billing@Example.com",
            description="Call Bob on +1 (555) 010-2000 or mail bob.smith@example.com.",
        )

        assert response.status_code == 201, response.content
        assert response.json()["args"]["customer_email"] == "bob.smith+billing@example.com"

    def test_risk_override_raises_the_proposals_risk(self, acme):
        rule(acme, risk_override="high")

        assert submit(acme.agent_client).json()["risk"] == "high"

    def test_a_disabled_rule_is_ignored(self, acme):
        rule(acme, allowed_fields=["subject", "description"], enabled=False)

        assert submit(acme.agent_client).status_code == 201

    def test_another_tenants_rule_does_not_apply(self, acme, globex):
        rule(globex, allowed_fields=["subject", "description"])

        assert submit(acme.agent_client).status_code == 201
        assert submit(globex.agent_client).status_code == 403


@pytest.mark.django_db
class TestHourlyLimit:
    def test_over_the_limit_is_429_with_retry_after_until_the_oldest_leaves_the_hour(self, acme):
        rule(acme, max_per_hour=2)
        first = submit(acme.agent_client, subject="One").json()["id"]
        assert submit(acme.agent_client, subject="Two").status_code == 201
        age(first, 50 * 60)  # made 50 minutes ago: leaves the hour in 10 minutes

        response = submit(acme.agent_client, subject="Three")

        assert response.status_code == 429, response.content
        body = response.json()
        assert (body["error"], body["policy"], body["check"]) == (
            "rate_limited",
            "support-limits",
            "max_per_hour",
        )
        retry_after = int(response["Retry-After"])
        assert 600 <= retry_after <= 602
        assert body["retry_after"] == retry_after
        assert f"try again in {retry_after} seconds" in body["detail"]
        assert Proposal.objects.count() == 2
        assert AuditEvent.objects.filter(action="proposal.denied", data__policy="support-limits").count() == 1

    def test_the_window_slides(self, acme):
        rule(acme, max_per_hour=1)
        first = submit(acme.agent_client, subject="One").json()["id"]
        assert submit(acme.agent_client, subject="Two").status_code == 429

        age(first, 3601)

        assert submit(acme.agent_client, subject="Two").status_code == 201

    def test_counts_per_agent_and_per_tool(self, acme):
        rule(acme, tool="*", max_per_hour=1)
        _, token = agent_create(tenant=acme.tenant, name="acme-other", tools=["*"])
        assert submit(acme.agent_client).status_code == 201

        assert submit(acme.client(token)).status_code == 201  # another agent: its own count
        slack = submit(
            acme.agent_client, {"channel": "#ops", "text": "Printer on fire"}, tool="slack.post_message"
        )
        assert slack.status_code == 201  # another tool: its own count
        assert submit(acme.agent_client, subject="Again").status_code == 429

    def test_a_submission_that_passed_the_count_is_refused_if_another_was_stored_meanwhile(
        self, acme, monkeypatch
    ):
        """The race of concurrent submissions, made deterministic: another proposal lands while this one's
        preview is rendered, after its first count. The count under the lock, at the insert, refuses it."""
        from adapters import registry

        rule(acme, max_per_hour=1)
        original = registry.prepare
        landed: list[Any] = []

        def prepare_while_another_lands(*args: Any, **kwargs: Any) -> Any:
            prepared = original(*args, **kwargs)
            if not landed:
                landed.append(None)  # the concurrent submission itself goes through plainly
                landed[0] = submit(acme.agent_client, subject="The concurrent one")
            return prepared

        monkeypatch.setattr(registry, "prepare", prepare_while_another_lands)
        response = submit(acme.agent_client, subject="This one")

        assert landed[0].status_code == 201
        assert response.status_code == 429, response.content
        assert response.json()["check"] == "max_per_hour"
        assert list(Proposal.objects.values_list("args__subject", flat=True)) == ["The concurrent one"]
        assert AuditEvent.objects.filter(action="proposal.denied", data__policy="support-limits").count() == 1

    def test_a_limit_of_zero_pauses_the_tool_with_403(self, acme):
        rule(acme, max_per_hour=0)

        response = submit(acme.agent_client)

        assert response.status_code == 403
        assert response.json()["check"] == "max_per_hour" and "Retry-After" not in response

    def test_a_reviewers_edit_is_not_rate_limited(self, acme):
        rule(acme, max_per_hour=1)
        proposal = submit(acme.agent_client).json()

        response = acme.reviewer_client.post(
            f"/api/v1/proposals/{proposal['id']}/approve/",
            {"args": {**TICKET, "priority": "low"}},
            format="json",
        )

        assert response.status_code == 202, response.content

    def test_a_retry_after_the_policy_tightened_is_still_a_replay(self, acme):
        """The proposal was stored before the rule existed; its retry is answered with it, not a 403 that
        would tell the agent it was refused while the proposal waits for a reviewer. A new submission is
        refused."""
        first = submit(acme.agent_client)
        assert first.status_code == 201
        rule(acme, allowed_fields=["subject"])

        retry = submit(acme.agent_client)
        other = acme.agent_client.post(
            "/api/v1/proposals/",
            {"tool": "crm.create_ticket", "args": {**TICKET, "subject": "Another one"}},
            format="json",
        )

        assert (retry.status_code, retry.json()["id"]) == (200, first.json()["id"])
        assert other.status_code == 403
        assert Proposal.objects.count() == 1

    def test_a_replay_at_the_limit_is_still_a_replay(self, acme):
        rule(acme, max_per_hour=1)
        assert submit(acme.agent_client).status_code == 201

        assert submit(acme.agent_client).status_code == 200


@pytest.mark.django_db
class TestPrecedence:
    """The most specific enabled rule applies alone: agent + tool, agent + "*", tenant + tool, tenant + "*"."""

    def test_an_agents_own_rule_overrides_the_tenant_wide_rule(self, acme):
        rule(acme, name="tenant-strict", allowed_fields=["subject", "description"])
        rule(acme, name="bot-trusted", agent=acme.agent)  # no limits for this agent
        _, token = agent_create(tenant=acme.tenant, name="acme-other", tools=["*"])

        assert submit(acme.agent_client).status_code == 201
        denied = submit(acme.client(token))
        assert (denied.status_code, denied.json()["policy"]) == (403, "tenant-strict")

    def test_an_agents_rule_for_every_tool_beats_a_tenant_rule_for_the_tool(self, acme):
        rule(acme, name="tenant-tool", allowed_fields=["subject", "description"])
        rule(acme, name="bot-any", agent=acme.agent, tool="*", max_items=1)

        response = submit(acme.agent_client, tags=["a", "b"])

        assert (response.status_code, response.json()["policy"]) == (403, "bot-any")
        assert submit(acme.agent_client, tags=["a"]).status_code == 201  # priority is allowed again

    def test_a_tenant_rule_for_the_tool_beats_the_tenant_rule_for_every_tool(self, acme):
        rule(acme, name="tenant-any", tool="*", max_items=1)
        rule(acme, name="tenant-tool", max_items=3)

        assert submit(acme.agent_client, tags=["a", "b"]).status_code == 201
        slack = submit(acme.agent_client, {"channel": "#ops", "text": "hi"}, tool="slack.post_message")
        assert slack.status_code == 201  # tenant-any applies there, and has nothing to say about it

    def test_a_disabled_agent_rule_falls_back_to_the_tenant_rule(self, acme):
        rule(acme, name="tenant-strict", allowed_fields=["subject", "description"])
        rule(acme, name="bot-trusted", agent=acme.agent, enabled=False)

        assert submit(acme.agent_client).json()["policy"] == "tenant-strict"

    def test_one_rule_per_scope(self, acme):
        from django.db import IntegrityError, transaction

        rule(acme, name="a")
        rule(acme, name="b", agent=acme.agent)
        for fields in ({"name": "c"}, {"name": "d", "agent": acme.agent}):
            with pytest.raises(IntegrityError), transaction.atomic():
                rule(acme, **fields)


@pytest.mark.django_db
class TestAdmin:
    def change(self, admin_client: Any, obj: ToolPolicy, **changes: Any) -> Any:
        data = {
            "tenant": obj.tenant_id,
            "agent": obj.agent_id or "",
            "tool": obj.tool,
            "name": obj.name,
            "description": obj.description,
            "allowed_fields": json.dumps(obj.allowed_fields),
            "max_items": obj.max_items if obj.max_items is not None else "",
            "max_per_hour": obj.max_per_hour if obj.max_per_hour is not None else "",
            "risk_override": obj.risk_override,
            # The approval fields, as the form shows them (a browser posts every field of the form).
            "risk": obj.risk,
            "approvals_required": obj.approvals_required,
            "review_group": obj.review_group_id or "",
            "enabled": "on",
            "refuse_card_numbers": "on",
            "_save": "Save",
            **changes,
        }
        return admin_client.post(f"/admin/approvals/toolpolicy/{obj.pk}/change/", data)

    def test_an_admin_edit_takes_effect_on_the_next_request(self, acme, admin_client):
        stored = rule(acme, allowed_fields=["subject", "description"])
        assert submit(acme.agent_client).status_code == 403

        response = self.change(
            admin_client, stored, allowed_fields='["subject", "description", "priority", "customer_email"]'
        )

        assert response.status_code == 302, response.content.decode()[:2000]
        assert submit(acme.agent_client).status_code == 201

        self.change(admin_client, stored, allowed_fields="[]", max_per_hour="1")
        limited = submit(acme.agent_client, subject="Another")
        assert (limited.status_code, limited.json()["error"]) == (429, "rate_limited")

    def test_the_admin_refuses_unknown_fields_tools_and_foreign_agents(self, acme, globex, admin_client):
        stored = rule(acme)

        for changes, message in [
            ({"allowed_fields": '["subjct"]'}, "Not fields of crm.create_ticket: subjct"),
            ({"tool": "crm.create_tickets"}, "Unknown tool"),
            ({"agent": globex.agent.pk}, "This agent belongs to another tenant."),
        ]:
            response = self.change(admin_client, stored, **changes)
            assert response.status_code == 200  # the form again, with the error
            assert message in response.content.decode()
        stored.refresh_from_db()
        assert (stored.allowed_fields, stored.tool, stored.agent_id) == ([], "crm.create_ticket", None)

    def test_the_list_and_add_pages_render(self, acme, admin_client):
        rule(acme, agent=acme.agent)

        assert admin_client.get("/admin/approvals/toolpolicy/").status_code == 200
        assert admin_client.get("/admin/approvals/toolpolicy/add/").status_code == 200
