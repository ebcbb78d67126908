from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from approvals import views

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("proposals/<uuid:pk>/", views.proposal_review, name="proposal-review"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("approvals.api.urls")),
]
