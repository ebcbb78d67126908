"""The admin's form for a tenant's connection: secrets are write-only.

The token and the signing secret are never rendered (not even encrypted): a blank field keeps the stored
value, a filled one replaces it. Saving goes through ``connections.connection_set`` (validation, encryption,
audit), never through ``Model.save``. The admin sets ``form.actor`` / ``form.where`` before saving
(``ModelAdmin.save_model``); without them the change is audited as the system's.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ImproperlyConfigured

from adapters import connections
from adapters.connections import signing_secret_taken
from adapters.models import Connection
from audit import services as audit

ADMIN = audit.Where(channel="web")


class ConnectionForm(forms.ModelForm):
    token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Blank keeps the stored token.",
    )
    signing_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Blank keeps the stored secret.",
    )
    clear_signing_secret = forms.BooleanField(required=False, help_text="Remove the stored signing secret.")

    class Meta:
        model = Connection
        fields = ["tenant", "system", "base_url", "review_channel"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actor: audit.Actor = audit.SYSTEM
        self.where: audit.Where = ADMIN
        if self.instance.pk:
            # Which connection this is stays fixed; set another one for another tenant or system.
            for name in ("tenant", "system"):
                self.fields[name].disabled = True
        else:
            self.fields["token"].required = True
            self.fields["token"].help_text = "Write-only: never shown again."

    def clean_base_url(self) -> str:
        try:
            url = connections.normalize_base_url(self.cleaned_data["base_url"])
            connections.check_public(url)  # not into the gateway's own network (checked again at each call)
            return url
        except connections.InvalidConnection as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            connections.fernet()
        except ImproperlyConfigured as exc:
            raise forms.ValidationError(str(exc)) from None
        secret = data.get("signing_secret")
        tenant = data.get("tenant") or self.instance.tenant
        system = data.get("system") or self.instance.system
        if secret and signing_secret_taken(system, tenant, secret):
            self.add_error("signing_secret", connections.DUPLICATE_SIGNING)
        return data

    def save(self, commit: bool = True) -> Connection:
        data = self.cleaned_data
        signing_secret: str | None = data.get("signing_secret") or None
        if data.get("clear_signing_secret"):
            signing_secret = ""
        try:
            row, _ = connections.connection_set(
                tenant=data["tenant"],
                system=data["system"],
                base_url=data["base_url"],
                token=data.get("token") or None,
                signing_secret=signing_secret,
                review_channel=data.get("review_channel", ""),
                actor=self.actor,
                where=self.where,
            )
        except (connections.InvalidConnection, ImproperlyConfigured) as exc:
            raise forms.ValidationError(str(exc)) from None
        self.instance = row
        return row

    def save_m2m(self) -> None:  # the admin calls it after save(); a connection has no relations
        return None
