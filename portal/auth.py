"""django-allauth's hooks for the portal: who may sign in how, and where SSO sign-ins land.

- A member of an organisation that requires SSO (vendor staff excepted) is refused every other way
  of signing in (password, passkey).
- An organisation's provider may sign in only addresses at the organisation's verified domains:
  checked before allauth matches an existing account by e-mail (`authenticate_by_email` runs
  before `pre_social_login`) and again before the login itself, so another organisation's provider
  can never take over an account by asserting its address.
- A person the provider signed in lands in the organisation (created on first sign-in with the
  default role the admin chose).
"""

from __future__ import annotations

import time
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect

from contracts.identity import selectors as identity_selectors
from contracts.identity import services as identity_services


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """What the person typed in the sign-in form's "username" field (a username or an address)."""
    credentials = credentials or {}
    return (
        request.POST.get("username")
        or request.POST.get("login")
        or credentials.get("username")
        or credentials.get("email")
    )


def _sociallogin(signal_kwargs: dict | None):
    return (signal_kwargs or {}).get("sociallogin")


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Accounts come from invitations, SSO (first sign-in) and SCIM, never self-service sign-up.
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        # People who sign in through their organisation's provider have no password to type again:
        # a sign-in through the provider within the reauthentication window counts (e.g. to enrol a
        # second factor right after signing in); later they sign in through the provider again.
        request = self.request
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not user.has_usable_password():
            window = settings.ACCOUNT_REAUTHENTICATION_TIMEOUT
            records = get_authentication_records(request)
            if any(
                r.get("method") == "socialaccount" and time.time() - r.get("at", 0) < window for r in records
            ):
                return False
        return super().is_reauthentication_required(app=app, **kwargs)

    def pre_login(self, request: HttpRequest, user, **kwargs):
        sociallogin = _sociallogin(kwargs.get("signal_kwargs"))
        if sociallogin is None and identity_selectors.sso_required_for(user=user):
            messages.error(
                request, "Your organisation requires single sign-on: continue with your e-mail address."
            )
            return redirect("login")
        response = super().pre_login(request, user, **kwargs)
        if response is None and sociallogin is not None:
            identity = identity_selectors.sso_identity_for_provider(sociallogin.account.provider)
            if identity is not None:
                identity_services.sso_member_join(org=identity.organization, user=user)
        return response


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def _identity(self, sociallogin):
        return identity_selectors.sso_identity_for_provider(sociallogin.account.provider)

    def _allowed(self, sociallogin, email: str) -> bool:
        identity = self._identity(sociallogin)
        if identity is None:
            return False
        return identity_selectors.email_domain(email) in identity_selectors.verified_domains(
            org=identity.organization
        )

    def is_open_for_signup(self, request: HttpRequest, sociallogin) -> bool:
        return self._identity(sociallogin) is not None

    def can_authenticate_by_email(self, sociallogin, email: str) -> bool:
        return self._allowed(sociallogin, email)

    def authenticate_by_email(self, sociallogin):
        # The organisation's provider speaks for addresses at its verified domains, and only those.
        for address in sociallogin.email_addresses:
            address.verified = self._allowed(sociallogin, address.email)
        found = super().authenticate_by_email(sociallogin)
        if found is not None:
            user, email = found
            # The address is the provider's to assert: record it as verified so allauth does not
            # treat the existing account as a possible squatter and wipe its password.
            EmailAddress.objects.update_or_create(
                user=user, email__iexact=email, defaults={"email": email.lower(), "verified": True}
            )
        return found

    def pre_social_login(self, request: HttpRequest, sociallogin) -> None:
        emails = [a.email for a in sociallogin.email_addresses] or [sociallogin.user.email]
        emails = [e for e in emails if e]
        if not emails or not all(self._allowed(sociallogin, e) for e in emails):
            messages.error(
                request,
                "Your organisation's identity provider may not sign in that e-mail address "
                f"({', '.join(emails) or 'none given'}): it is not at one of the organisation's domains.",
            )
            raise ImmediateHttpResponse(redirect("login"))

    def populate_user(self, request: HttpRequest, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        user.email = (user.email or "").lower()
        return user
