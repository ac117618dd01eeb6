"""The sign-in page at /accounts/login/: e-mail first.

An address at an organisation's verified domain goes to that organisation's OpenID Connect
provider. Anything else signs in with a password through django-allauth's login flow (so a
second factor is asked for when the account has one); django-axes counts the failures.

The hand-off to the provider is a page with a meta refresh, not a 302: Chromium applies the CSP
`form-action 'self'` to every redirect that follows a form POST, and would block a redirect to the
provider's origin. A meta refresh is not governed by CSP, so the policy stays strict.
"""

from __future__ import annotations

from allauth.account.forms import LoginForm
from allauth.account.utils import get_next_redirect_url
from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from contracts.identity import selectors as identity_selectors

TEMPLATE = "registration/login.html"


def _page(request: HttpRequest, *, status: int = 200, **context) -> HttpResponse:
    context.setdefault("typed", "")
    context["next"] = get_next_redirect_url(request) or ""
    return render(request, TEMPLATE, context, status=status)


def sso_handoff(request: HttpRequest, *, provider_id: str, login_hint: str = "") -> HttpResponse:
    """Start the OpenID Connect flow of `provider_id` and hand the browser over to the provider."""
    provider = get_social_adapter(request).get_provider(request, provider_id)
    response = provider.redirect(
        request,
        process="login",
        next_url=get_next_redirect_url(request),
        auth_params={"login_hint": login_hint} if login_hint else {},
    )
    if response.status_code != 302:
        return response
    return render(request, "registration/sso_handoff.html", {"url": response["Location"]})


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    typed = request.POST.get("username", "").strip()[:254]
    password = request.POST.get("password", "")
    identity = identity_selectors.sso_identity_for_email(typed)
    if identity is not None and not password:
        return sso_handoff(request, provider_id=identity.sso_provider_id, login_hint=typed)
    if not typed or not password:
        return _page(
            request,
            typed=typed,
            ask_password=True,
            notice="Enter your password, or an address at your organisation's domain to use its single sign-on.",
        )
    form = LoginForm(data={"login": typed, "password": password}, request=request)
    if not form.is_valid():
        return _page(request, typed=typed, failed=True)
    if identity_selectors.sso_required_for(user=form.user):
        identity = identity or identity_selectors.sso_identity_for_email(form.user.email)
        return _page(request, typed=typed, sso_required=True, sso_email=form.user.email if identity else "")
    return form.login(request, redirect_url=get_next_redirect_url(request))
