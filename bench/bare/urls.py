from django.urls import path

from bench.bare.views import RowsView

urlpatterns = [path("rows/", RowsView.as_view())]
