from django.urls import path

from bench.bare.views import AuditedRowsView, RowsView

urlpatterns = [path("rows/", RowsView.as_view()), path("rows/audited/", AuditedRowsView.as_view())]
