"""Forms of the reviewer UI. The edit form is generated from the tool's args model, and it validates
nothing itself: the raw values go through the same contract and policy as an agent's (``registry.prepare``),
whose errors are put back on the fields they name."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args, get_origin

from django import forms

from adapters import registry
from approvals.services.decide import reason_given

REASON_REQUIRED = "Say why you reject it: the agent and the requester will read it."
CHANGES_REASON_REQUIRED = "Say what the agent should change: it reads this and proposes a corrected call."
LIST_HELP = "Comma separated."
# Text fields longer than this get a text area.
LONG_TEXT = 200


class ApproveForm(forms.Form):
    comment = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}), label="Comment (optional)"
    )
    # The args hash of the version the page showed: the approval counts for those args only (another
    # reviewer's edit since is refused, 409, rather than approved unseen). The page always sends it.
    args_hash = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)


class RejectForm(forms.Form):
    reason = forms.CharField(
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Reason (required)",
        error_messages={"required": REASON_REQUIRED},
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason_given(reason):  # invisible characters alone are no reason
            raise forms.ValidationError(REASON_REQUIRED)
        return reason


class RequestChangesForm(forms.Form):
    reason = forms.CharField(
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="What should change (required)",
        error_messages={"required": CHANGES_REASON_REQUIRED},
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason_given(reason):  # invisible characters alone are no reason
            raise forms.ValidationError(CHANGES_REASON_REQUIRED)
        return reason


class ContractChoiceField(forms.ChoiceField):
    """A select of the contract's values that leaves judging to the contract: a value posted outside the
    choices gets the contract's one error (naming its vocabulary), not Django's second one beside it."""

    def valid_value(self, value: Any) -> bool:
        return True


def _literal_choices(annotation: Any) -> list[Any] | None:
    """The values of the first ``Literal`` inside an annotation (through ``Optional`` and ``Annotated``)."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    for arg in get_args(annotation):
        found = _literal_choices(arg)
        if found:
            return found
    return None


def _non_null(prop: dict[str, Any]) -> dict[str, Any]:
    """The schema of an optional field without its ``null`` branch."""
    branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
    return {**branches[0], **{k: v for k, v in prop.items() if k != "anyOf"}} if len(branches) == 1 else prop


class ArgsForm(forms.Form):
    """One field per property of the tool's args model, prefilled with the proposal's current args.

    Every Django field is optional and untyped (text): what is required, allowed and well-formed is the
    contract's business, so the reviewer gets exactly the errors an agent would get.
    """

    def __init__(self, tool: registry.Tool, *args: Any, current: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tool = tool
        self.kinds: dict[str, str] = {}
        schema = tool.args_model.model_json_schema()
        required = set(schema.get("required", []))
        model_fields = tool.args_model.model_fields
        current = current or {}
        for name, raw_prop in schema.get("properties", {}).items():
            prop = _non_null(raw_prop)
            kind = prop.get("type", "string")
            choices = _literal_choices(model_fields[name].annotation) if name in model_fields else None
            choices = choices or prop.get("enum")
            attrs: dict[str, Any] = {}
            if name in required:
                attrs["required"] = True
            field: forms.Field
            if choices:
                options = [(c, c) for c in choices]
                if name not in required:
                    options.insert(0, ("", "—"))
                field = ContractChoiceField(choices=options, required=False, widget=forms.Select(attrs=attrs))
                kind = "choice"
            elif kind == "array":
                field = forms.CharField(required=False, widget=forms.TextInput(attrs=attrs))
            elif kind == "integer":
                field = forms.CharField(
                    required=False, widget=forms.TextInput(attrs={**attrs, "inputmode": "numeric"})
                )
            elif kind == "boolean":
                field = forms.BooleanField(required=False)
            elif prop.get("format") == "email":
                field = forms.CharField(required=False, widget=forms.EmailInput(attrs=attrs))
            elif prop.get("maxLength", LONG_TEXT + 1) > LONG_TEXT or name in (
                "text",
                "description",
                "comment",
            ):
                field = forms.CharField(
                    required=False, widget=forms.Textarea(attrs={**attrs, "rows": 4}), strip=False
                )
            else:
                field = forms.CharField(required=False, widget=forms.TextInput(attrs=attrs))
            field.label = raw_prop.get("title") or name
            help_text = raw_prop.get("description") or prop.get("description") or ""
            if kind == "array":
                help_text = f"{help_text} {LIST_HELP}".strip()
            field.help_text = help_text
            self.kinds[name] = kind
            self.fields[name] = field
            if name in current and not self.is_bound:
                value = current[name]
                field.initial = ", ".join(map(str, value)) if isinstance(value, list) else value

    def raw_args(self) -> dict[str, Any]:
        """The submitted values as the args an agent would send; an empty field is left out."""
        args: dict[str, Any] = {}
        for name, kind in self.kinds.items():
            value = self.data.get(name, "")
            if kind == "boolean":
                args[name] = name in self.data
                continue
            if not isinstance(value, str) or not value.strip():
                continue
            if kind == "array":
                args[name] = [item.strip() for item in value.split(",") if item.strip()]
            elif kind == "integer" and re.fullmatch(r"\s*-?\d{1,18}\s*", value):
                args[name] = int(value)
            else:
                args[name] = value  # the contract's normalizers trim and clean
        return args

    def add_contract_errors(self, errors: list[dict[str, Any]]) -> None:
        """Put the contract's errors (``loc`` like ``["args", "subject"]``) on the fields they name."""
        for error in errors:
            loc = [str(p) for p in error.get("loc", [])]
            if loc and loc[0] == "args":
                loc = loc[1:]
            field = loc[0] if loc and loc[0] in self.fields else None
            self.add_error(field, str(error.get("msg", "invalid")))
