"""Query strings and paths are input like a body: a NUL or another control character (C0, DEL, C1), or bytes
that are not UTF-8 (a lone surrogate, an overlong encoding), in any query parameter of any list page is a
400 naming the parameter, never a 500 (PostgreSQL's text parameters cannot hold a NUL).

The parameters are not listed by hand: the API's come from its OpenAPI document (every query parameter of
every GET operation), the admin's from each changelist's own filters (``expected_parameters()``), the
inbox's from its ``Filters``. Hypothesis places each bad character inside generated text.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from approvals.middleware import CONTROL_IN_PARAMETER
from approvals.views import Filters

# Percent-encoded, as a client sends them: the characters a text column cannot hold or has no business
# holding, and byte sequences that are no UTF-8 at all.
CONTROL = ["%00", "%01", "%09", "%0A", "%1B", "%7F", "%C2%9F"]  # NUL, SOH, tab, LF, ESC, DEL, C1 (U+009F)
NOT_UTF8 = ["%ED%A0%80", "%C0%80", "%FF"]  # a lone surrogate, an overlong NUL, a byte UTF-8 never uses
BAD = CONTROL + NOT_UTF8
FUZZ = hypothesis_settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def api_list_parameters() -> list[tuple[str, str]]:
    """(path, parameter) for every query parameter of every GET operation without a path parameter."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    found: list[tuple[str, str]] = []
    for path, operations in document["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue
        found.extend((path, p["name"]) for p in get.get("parameters", []) if p["in"] == "query")
    return sorted(found)


def admin_changelist_parameters(user: Any) -> list[tuple[str, str]]:
    """(changelist URL, parameter) for every filter of every admin changelist, and its search box."""
    found: list[tuple[str, str]] = []
    for model, model_admin in admin.site._registry.items():
        if not model._meta.managed:  # django-rq's dashboard entry: a link to its own views, no changelist
            continue
        request = RequestFactory().get("/")
        request.user = user
        changelist = model_admin.get_changelist_instance(request)
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for spec in changelist.filter_specs:
            found.extend((url, name) for name in spec.expected_parameters() if name)
        if model_admin.get_search_fields(request):
            found.append((url, "q"))
    return sorted(set(found))


INBOX_PARAMETERS = [f.name for f in dataclasses.fields(Filters)] + ["after"]
API_PARAMETERS = api_list_parameters()


def test_every_list_filter_is_covered() -> None:
    """The fuzzing below reaches the filters the issue names (guards against an empty discovery)."""
    assert ("/api/v1/proposals/", "tool") in API_PARAMETERS
    assert ("/api/v1/proposals/", "status") in API_PARAMETERS
    assert {"status", "tool", "agent", "risk", "after"} <= set(INBOX_PARAMETERS)


def with_bad(text: str, bad: str, at: int) -> str:
    quoted = quote(text, safe="")
    at = min(at, len(quoted))
    while at and "%" in quoted[max(0, at - 2) : at]:  # never split an escape of the generated text
        at -= 1
    return quoted[:at] + bad + quoted[at:]


def assert_refused(response: Any, parameter: str, *, api: bool) -> None:
    assert response.status_code == 400, (parameter, response.status_code)
    if api:
        body = response.json()
        assert body["error"] == "invalid_parameter"
        assert body["parameter"] == parameter
        assert parameter in body["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "parameter"), API_PARAMETERS)
@pytest.mark.parametrize("caller", ["agent", "reviewer"])
@FUZZ
@given(text=st.text(max_size=12), bad=st.sampled_from(BAD), at=st.integers(0, 40))
def test_api_list_filters(
    acme: Any, path: str, parameter: str, caller: str, text: str, bad: str, at: int
) -> None:
    client = acme.agent_client if caller == "agent" else acme.reviewer_client

    response = client.get(f"{path}?{parameter}={with_bad(text, bad, at)}")

    assert_refused(response, parameter, api=True)


@pytest.mark.django_db
@pytest.mark.parametrize("parameter", INBOX_PARAMETERS)
@FUZZ
@given(text=st.text(max_size=12), bad=st.sampled_from(BAD), at=st.integers(0, 40))
def test_inbox_filters(acme: Any, parameter: str, text: str, bad: str, at: int) -> None:
    client = Client()
    client.force_login(acme.reviewer)

    assert_refused(client.get(f"/?{parameter}={with_bad(text, bad, at)}"), parameter, api=False)


@pytest.fixture
def superuser(db: Any) -> Any:
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678")


@pytest.mark.django_db
def test_admin_and_ops_filters(acme: Any, superuser: Any) -> None:
    """Every admin changelist filter and search box, and /ops/, with each bad value."""
    client = Client()
    client.force_login(superuser)
    targets = [*admin_changelist_parameters(superuser), ("/ops/", "range")]
    assert ("/admin/audit/auditevent/", "tool") in targets
    assert ("/admin/approvals/proposal/", "q") in targets

    for url, parameter in targets:
        for bad in BAD:
            assert_refused(client.get(f"{url}?{parameter}=a{bad}b"), parameter, api=False)


@pytest.mark.django_db
@pytest.mark.parametrize("bad", BAD)
def test_the_parameter_name_itself_is_checked(acme: Any, bad: str) -> None:
    response = acme.agent_client.get(f"/api/v1/proposals/?to{bad}ol=x")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_parameter"


@pytest.mark.django_db
@pytest.mark.parametrize("bad", CONTROL)
@pytest.mark.parametrize(
    "path", ["/api/v1/proposals/{}/", "/api/v1/{}", "/proposals/{}/", "/admin/approvals/proposal/{}/change/"]
)
def test_a_control_character_in_the_path_is_a_400(acme: Any, superuser: Any, bad: str, path: str) -> None:
    client = acme.agent_client if path.startswith("/api/") else Client()
    if not path.startswith("/api/"):
        client.force_login(superuser)

    response = client.get(path.format(f"0b{bad}1"))

    assert_refused(response, "path", api=path.startswith("/api/"))


@pytest.mark.django_db
def test_the_tool_filter_with_a_nul_is_a_400_naming_it(acme: Any) -> None:
    """The fuzzer's find: ``GET /api/v1/proposals/?tool=`` with a ``%00`` inside was a 500 on PostgreSQL."""
    response = acme.agent_client.get("/api/v1/proposals/?tool=crm.create%00_ticket")

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_parameter",
        "detail": CONTROL_IN_PARAMETER.format(name="tool"),
        "parameter": "tool",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", ["tool=crm.create_ticket", "tool=caf%C3%A9", "status=pending&page_size=5", "a+b=c+d", ""]
)
def test_printable_values_still_pass(acme: Any, query: str) -> None:
    assert acme.agent_client.get(f"/api/v1/proposals/?{query}").status_code == 200
