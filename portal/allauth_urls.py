"""The parts of django-allauth the portal serves under /accounts/ (instead of all of allauth.urls).

Left out: allauth's own password reset and e-mail confirmation (the portal uses Django's password
reset; addresses are not self-managed), and its regex routes, written here as path() so that the
tenancy walker (tests/portal/test_tenancy.py) can fill them.
"""

from __future__ import annotations

from allauth.account import views as account_views
from allauth.socialaccount.providers.openid_connect import views as oidc_views
from django.urls import include, path
from django.views.generic.base import RedirectView

from portal.views import auth as auth_views

urlpatterns = [
    # The same page as the portal's "login": allauth's templates and redirects name it account_login.
    path("login/", auth_views.login_view, name="account_login"),
    path("logout/", account_views.logout, name="account_logout"),
    path("inactive/", account_views.account_inactive, name="account_inactive"),
    path(
        "signup/", account_views.signup, name="account_signup"
    ),  # closed: accounts come from invitations, SSO, SCIM
    path("reauthenticate/", account_views.reauthenticate, name="account_reauthenticate"),
    path("email/", account_views.email, name="account_email"),
    path("password/change/", account_views.password_change, name="account_change_password"),
    path("password/set/", account_views.password_set, name="account_set_password"),
    path(
        "password/reset/",
        RedirectView.as_view(pattern_name="password_reset", permanent=False),
        name="account_reset_password",
    ),
    path("2fa/", include("allauth.mfa.urls")),
    path("3rdparty/", include("allauth.socialaccount.urls")),
    path("oidc/<str:provider_id>/login/", oidc_views.login, name="openid_connect_login"),
    path("oidc/<str:provider_id>/login/callback/", oidc_views.callback, name="openid_connect_callback"),
]
