from django.urls import path

from bench.bare.views import AuditedRowsView, FloorView, RowsView

urlpatterns = [
    path("rows/", RowsView.as_view()),
    path("rows/audited/", AuditedRowsView.as_view()),
    path("rows/floor/", FloorView.as_view()),
]
