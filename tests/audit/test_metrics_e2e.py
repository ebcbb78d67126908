"""/metrics with real processes: the worker counts, gunicorn's web processes merge and serve the figures
(prometheus-client multiprocess mode); the sandbox CRM fails 5 times and the breaker shows open."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.stack import running_stack

pytestmark = pytest.mark.e2e


def value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_the_breaker_opening_in_the_worker_shows_on_the_web_metrics():
    # ACME_COMMIT_MAX_ATTEMPTS=5: the commit's five attempts are its whole budget, so it is dead-lettered
    # instead of waiting for the breaker, and the dead-letter gauge has something to show.
    with running_stack(
        workers=1,
        ACME_RETRY_MAX="5",
        ACME_BREAKER_FAILURES="5",
        ACME_BREAKER_COOLDOWN="60",
        ACME_COMMIT_MAX_ATTEMPTS="5",
    ) as stack:
        party = stack.party()
        created = stack.api(
            "POST",
            "/proposals/",
            party["agent"],
            json={
                "tool": "crm.create_ticket",
                "args": {"subject": "Printer on fire", "description": "Floor 3", "priority": "high"},
            },
        )
        assert created.status_code == 201, created.text
        stack.sandbox(
            "POST", "/_sandbox/faults", json={"target": "crm", "mode": "status", "status": 503, "count": 5}
        )

        approved = stack.api(
            "POST", f"/proposals/{created.json()['id']}/approve/", party["reviewer"], json={}
        )
        assert approved.status_code == 202, approved.text
        done = stack.wait_status(created.json()["id"], party["agent"], {"failed", "committed"})
        assert done["status"] == "failed", done

        # Several scrapes: gunicorn's 2 workers answer in turn and must all see the worker's counters.
        for _ in range(3):
            text = requests.get(f"{stack.web_url}/metrics", timeout=30).text
            assert value(text, "acme_breaker_state", downstream="crm", state="open") == 1.0
            assert value(text, "acme_breaker_trips_total", downstream="crm") == 1.0
            calls = {"tool": "crm.create_ticket", "downstream": "crm"}
            assert value(text, "acme_outbound_calls_total", **calls, outcome="transient_failure") == 1.0
            assert value(text, "acme_outbound_retries_total", **calls) == 4.0
            assert value(text, "acme_dead_letters", tool="crm.create_ticket") == 1.0
