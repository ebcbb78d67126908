"""The tools' documents in the API: the catalogue (``GET /api/v1/tools/``), its OpenAI function-calling form
(``?format=openai``) and a direct read's body and answer (``POST /api/v1/tools/{name}/call/``)."""

from __future__ import annotations

from rest_framework import serializers

from approvals.api.serializers import ArgsField
from approvals.models import Risk


class ToolCallHowOut(serializers.Serializer):
    how = serializers.ChoiceField(
        choices=["propose", "call"],
        help_text="`propose`: a write, approved by a "
        "reviewer before it is sent; `call`: a read, answered at once.",
    )
    method = serializers.CharField()
    url = serializers.URLField()
    body = serializers.CharField(help_text="The request body's shape.")


class ToolOut(serializers.Serializer):
    name = serializers.CharField()
    safe_name = serializers.CharField(
        help_text="The same tool under an OpenAI-safe name (dots become "
        "underscores); accepted wherever a tool is named."
    )
    kind = serializers.ChoiceField(choices=["read", "write"])
    description = serializers.CharField()
    parameters = serializers.DictField()
    requires_approval = serializers.BooleanField()
    risk = serializers.ChoiceField(choices=Risk.choices)
    call = ToolCallHowOut()


class ToolCallIn(serializers.Serializer):
    args = ArgsField(help_text="The tool's arguments: see GET /api/v1/tools/ for each tool's schema.")


class ToolCallOut(serializers.Serializer):
    tool = serializers.CharField()
    result = serializers.JSONField()


class ToolsOut(serializers.Serializer):
    tools = ToolOut(many=True)


class OpenAIFunctionSpec(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.DictField()
    strict = serializers.BooleanField()


class OpenAIFunction(serializers.Serializer):
    """One entry of ``?format=openai``: OpenAI's function-calling tool definition."""

    type = serializers.ChoiceField(choices=["function"])
    function = OpenAIFunctionSpec()
