from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.bare.models import BareRow


class RowIn(serializers.Serializer):
    tool = serializers.CharField(max_length=64)
    args = serializers.DictField()
    rationale = serializers.CharField(required=False, allow_blank=True, default="")


class RowsView(APIView):
    """Validate the body, insert one row, answer 201 with it: the least a DRF intake endpoint does."""

    def post(self, request: Request) -> Response:
        data = RowIn(data=request.data)
        data.is_valid(raise_exception=True)
        row = BareRow.objects.create(**data.validated_data)
        return Response({"id": row.pk, "tool": row.tool, "args": row.args, "rationale": row.rationale,
                         "created_at": row.created_at}, status=201)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})
