"""A proposal's links: each is what ``reverse()`` gives for it, under any script prefix (the paths are
reversed once per prefix and reused, approvals.api.serializers._link_paths)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse, set_script_prefix

from tests.approvals.test_api import TICKET, submit

NAMES = {
    "self": "api-proposal-detail",
    "review": "proposal-review",
    "approve": "api-proposal-approve",
    "reject": "api-proposal-reject",
    "request_changes": "api-proposal-request-changes",
    "cancel": "api-proposal-cancel",
    "receipt": "api-proposal-receipt",
}


@pytest.mark.django_db
def test_each_link_is_the_reversed_path_of_its_own_proposal(acme: Any) -> None:
    first = submit(acme).json()
    second = submit(acme, {**TICKET, "subject": "Another one"}).json()
    for body in (first, second):
        assert body["links"] == {
            key: "http://testserver" + reverse(name, kwargs={"pk": body["id"]}) for key, name in NAMES.items()
        }


@pytest.mark.django_db
def test_links_follow_the_script_prefix_of_the_request(acme: Any) -> None:
    plain = submit(acme).json()
    set_script_prefix("/gateway/")  # what the WSGI handler sets from SCRIPT_NAME (the test client does not)
    try:
        prefixed = acme.agent_client.get(f"/api/v1/proposals/{plain['id']}/").json()
    finally:
        set_script_prefix("/")
    assert (
        prefixed["links"]["approve"] == f"http://testserver/gateway/api/v1/proposals/{plain['id']}/approve/"
    )
    assert prefixed["links"]["review"] == f"http://testserver/gateway/proposals/{plain['id']}/"
    again = acme.agent_client.get(f"/api/v1/proposals/{plain['id']}/").json()
    assert again["links"] == plain["links"]
