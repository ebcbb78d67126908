"""Inbound events: one per (source, event id) across all tenants. Tickets the gateway created: every
committed ``crm.create_ticket`` receipt becomes its tenant's ``adapters.CreatedRecord``, so tenants that
share a CRM keep the tickets they created before ownership was checked."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

# A receipt's link: the API's ticket URL (receipts before the link went to the person's page), or the
# ticket's page for people, Zendesk's /agent/tickets/<id> (the API's URL then is response_summary["api_url"]).
_SUFFIXES = ("/api/v2/tickets/", "/agent/tickets/")


def backfill_created_records(apps: Any, schema_editor: Any) -> None:
    Receipt = apps.get_model("approvals", "Receipt")
    CreatedRecord = apps.get_model("adapters", "CreatedRecord")
    receipts = Receipt.objects.filter(proposal__tool="crm.create_ticket").select_related("proposal__tenant")
    for receipt in receipts.iterator(chunk_size=1000):
        # "<base URL>/api/v2/tickets/<id>.json" or "<base URL>/agent/tickets/<id>": the CRM it was created in.
        url = receipt.external_url or ""
        suffix = next((s for s in _SUFFIXES if s in url), "")
        base_url = url[: url.rfind(suffix)] if suffix else ""
        if not base_url or not receipt.external_id:
            continue
        CreatedRecord.objects.get_or_create(
            tenant=receipt.proposal.tenant.slug,
            system="crm",
            base_url=base_url,
            external_id=receipt.external_id,
        )


def dedupe_inbound_events(apps: Any, schema_editor: Any) -> None:
    """An event id recorded for several tenants keeps its id on the first; the later ones are renamed
    ``<id>#<pk>`` (kept, not deleted: agents may have read them), so the global constraint holds."""
    InboundEvent = apps.get_model("approvals", "InboundEvent")
    seen: set[tuple[str, str]] = set()
    for event in InboundEvent.objects.order_by("received_at", "pk").iterator(chunk_size=1000):
        key = (event.source, event.event_id)
        if key in seen:
            suffix = f"#{event.pk}"
            event.event_id = event.event_id[: 128 - len(suffix)] + suffix
            event.save(update_fields=["event_id"])
        else:
            seen.add(key)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0007_toolpolicy_allow_slack_markup"),
        ("adapters", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="inboundevent", name="inbound_event_once"),
        migrations.RunPython(dedupe_inbound_events, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="inboundevent",
            constraint=models.UniqueConstraint(
                fields=("source", "event_id"), name="inbound_event_once_globally"
            ),
        ),
        migrations.RunPython(backfill_created_records, migrations.RunPython.noop),
    ]
