"""One review permission: who may decide a tenant's proposals is answered by ``selectors.may_review``."""

from __future__ import annotations

from typing import Any

import pytest

from approvals import selectors
from approvals.accounts import person_create
from approvals.models import Membership, Role, role_reviews


@pytest.mark.django_db
def test_reviewers_and_admins_review_their_own_tenant_only(acme: Any, globex: Any) -> None:
    admin = person_create(tenant=acme.tenant, username="acme-admin", role=Role.ADMIN, password="pw-12345678")

    assert selectors.may_review(acme.reviewer, acme.tenant.pk)
    assert selectors.may_review(admin, acme.tenant.pk)
    assert not selectors.may_review(acme.requester, acme.tenant.pk)
    assert not selectors.may_review(acme.reviewer, globex.tenant.pk)


@pytest.mark.django_db
def test_a_membership_answers_as_the_selector_does(acme: Any) -> None:
    for membership in Membership.objects.filter(tenant=acme.tenant):
        assert membership.can_review == selectors.may_review(membership.user, acme.tenant.pk)
        assert membership.can_review == role_reviews(membership.role)


@pytest.mark.django_db
def test_a_requester_is_shown_no_decision_on_the_review_page(acme: Any, client: Any) -> None:
    from approvals import services
    from audit.services import Where

    proposal = services.proposal_submit(
        agent=acme.agent,
        tool="crm.create_ticket",
        args={"subject": "Refund", "description": "Order 991 arrived broken."},
        where=Where(channel="api"),
    ).proposal

    client.force_login(acme.reviewer)
    as_reviewer = client.get(f"/proposals/{proposal.pk}/")
    client.force_login(acme.requester)
    as_requester = client.get(f"/proposals/{proposal.pk}/")

    assert as_reviewer.status_code == 200 and as_reviewer.context["can_decide"] is True
    assert as_requester.status_code in (200, 404)
    if as_requester.status_code == 200:
        assert as_requester.context["can_decide"] is False
