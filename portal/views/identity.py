"""Identity and accountability pages of an organisation: the audit log, members and invitations."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from contracts.audit import selectors as audit_selectors
from contracts.audit.csv import audit_csv_rows
from contracts.errors import ApplicationError
from contracts.identity import provisioning
from contracts.identity import selectors as identity_selectors
from contracts.identity import services as identity_services
from contracts.models import AuditAction, Role
from contracts.tenancy.roles import Permission, permission_require
from portal.access import org_view

AUDIT_PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *AuditAction.choices])
    actor = forms.CharField(required=False, max_length=254, label="Actor contains")
    target_type = forms.CharField(required=False, max_length=40, label="Object type")
    since = forms.DateField(required=False, label="From (date)")
    until = forms.DateField(required=False, label="To (date, inclusive)")

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "Must be on or after the start date.")
        return data

    def selector_kwargs(self) -> dict:
        data = self.cleaned_data
        since = data.get("since")
        until = data.get("until")
        return {
            "action": data.get("action") or None,
            "actor": data.get("actor") or None,
            "target_type": data.get("target_type") or None,
            "since": dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC) if since else None,
            "until": dt.datetime.combine(until, dt.time.max, tzinfo=dt.UTC) if until else None,
        }


@require_GET
@org_view()
def audit_log(request: HttpRequest) -> HttpResponse:
    permission_require(request.membership.role, Permission.VIEW_AUDIT_LOG)
    form = AuditFilterForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    kwargs = form.selector_kwargs() if request.GET and valid else {}
    if valid and request.GET.get("format") == "csv":
        entries = audit_selectors.audit_list(org=request.org, **kwargs)
        response = StreamingHttpResponse(audit_csv_rows(entries), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="audit-{request.org.slug}.csv"'
        return response
    entries = audit_selectors.audit_list(org=request.org, **kwargs) if valid else None
    page = None
    if entries is not None:
        page = Paginator(entries.select_related(None), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "target_types": audit_selectors.audit_target_types(org=request.org),
    }
    return render(request, "portal/identity/audit.html", context, status=200 if valid else 400)


# -- members and invitations -------------------------------------------------------------------


def _members_page(request: HttpRequest, *, status: int = 200, **extra) -> HttpResponse:
    context = {
        "members": identity_selectors.member_list(org=request.org),
        "invitations": identity_selectors.invitation_list_open(org=request.org),
        "roles": Role.choices,
        "now": timezone.now(),
        **extra,
    }
    return render(request, "portal/identity/members.html", context, status=status)


@require_GET
@org_view()
def members(request: HttpRequest) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_MEMBERS)
    return _members_page(request)


@require_POST
@org_view()
def member_invite(request: HttpRequest) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_MEMBERS)
    email, role = request.POST.get("email", ""), request.POST.get("role", Role.MEMBER)
    try:
        invitation, _raw = identity_services.invitation_create(
            org=request.org, email=email, role=role, acting_user=request.user
        )
    except ApplicationError as error:
        return _members_page(
            request, status=error.status_code, error=error, typed={"email": email, "role": role}
        )
    messages.success(request, f"Invitation sent to {invitation.email}; the link works once, for 7 days.")
    return redirect("portal:members", org=request.org.slug)


@require_POST
@org_view()
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_MEMBERS)
    invitation = identity_selectors.invitation_get(org=request.org, invitation_id=invitation_id)
    identity_services.invitation_revoke(invitation=invitation, acting_user=request.user)
    messages.success(request, f"The invitation to {invitation.email} is revoked; its link no longer works.")
    return redirect("portal:members", org=request.org.slug)


@require_POST
@org_view()
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_MEMBERS)
    membership = identity_selectors.member_get(org=request.org, membership_id=membership_id)
    try:
        membership = identity_services.member_role_change(
            membership=membership, role=request.POST.get("role", ""), acting_user=request.user
        )
    except ApplicationError as error:
        return _members_page(request, status=error.status_code, error=error)
    messages.success(
        request, f"{membership.user.get_username()} is now {membership.get_role_display().lower()}."
    )
    if membership.user_id == request.user.pk and membership.role != Role.ADMIN:
        return redirect("portal:dashboard", org=request.org.slug)
    return redirect("portal:members", org=request.org.slug)


@require_POST
@org_view()
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_MEMBERS)
    membership = identity_selectors.member_get(org=request.org, membership_id=membership_id)
    try:
        identity_services.member_remove(membership=membership, acting_user=request.user)
    except ApplicationError as error:
        return _members_page(request, status=error.status_code, error=error)
    messages.success(
        request, f"{membership.user.get_username()} is no longer a member of {request.org.name}."
    )
    if membership.user_id == request.user.pk:
        return redirect("portal:home")
    return redirect("portal:members", org=request.org.slug)


def _invitation_page(request: HttpRequest, token: str, *, status: int = 200, **extra) -> HttpResponse:
    try:
        invitation = identity_services.invitation_check(raw_token=token)
    except ApplicationError as error:
        return render(
            request, "portal/identity/invitation.html", {"refusal": error}, status=error.status_code
        )
    user = request.user
    context = {
        "invitation": invitation,
        "token": token,
        "address_matches": user.is_authenticated and (user.email or "").lower() == invitation.email,
        "has_account": get_user_model().objects.filter(email__iexact=invitation.email).exists(),
        **extra,
    }
    return render(request, "portal/identity/invitation.html", context, status=status)


@require_GET
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    response = _invitation_page(request, token)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_POST
@login_required
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        membership = identity_services.invitation_accept(raw_token=token, acting_user=request.user)
    except ApplicationError as error:
        return _invitation_page(request, token, status=error.status_code, error=error)
    messages.success(request, f"Welcome to {membership.organization.name}.")
    return redirect("portal:dashboard", org=membership.organization.slug)


@require_POST
def invitation_signup(request: HttpRequest, token: str) -> HttpResponse:
    username = request.POST.get("username", "")
    try:
        membership = identity_services.invitation_signup(
            raw_token=token, username=username, password=request.POST.get("password", "")
        )
    except ApplicationError as error:
        return _invitation_page(
            request, token, status=error.status_code, error=error, typed={"username": username}
        )
    auth_login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
    messages.success(request, f"Welcome to {membership.organization.name}.")
    return redirect("portal:dashboard", org=membership.organization.slug)


# -- single sign-on ------------------------------------------------------------------------------


def _sso_page(request: HttpRequest, *, status: int = 200, **extra) -> HttpResponse:
    identity = identity_selectors.identity_get(org=request.org)
    provider_id = identity.sso_provider_id or identity_services.sso_provider_id(request.org)
    context = {
        "identity": identity,
        "domains": identity_selectors.domain_list(org=request.org),
        "roles": Role.choices,
        "callback_url": request.build_absolute_uri(f"/accounts/oidc/{provider_id}/login/callback/"),
        "scim_url": request.build_absolute_uri("/scim/v2/"),
        "scim_tokens": identity_selectors.scim_token_list(org=request.org),
        "scim_groups": identity_selectors.scim_group_list(org=request.org),
        **extra,
    }
    return render(request, "portal/identity/sso.html", context, status=status)


@require_GET
@org_view()
def sso_settings(request: HttpRequest) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_IDENTITY)
    return _sso_page(request)


@require_POST
@org_view()
def sso_provider(request: HttpRequest) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_IDENTITY)
    typed = {
        "issuer": request.POST.get("issuer", ""),
        "client_id": request.POST.get("client_id", ""),
        "default_role": request.POST.get("default_role", Role.MEMBER),
    }
    try:
        identity_services.sso_configure(
            org=request.org,
            issuer=typed["issuer"],
            client_id=typed["client_id"],
            client_secret=request.POST.get("client_secret") or None,
            default_role=typed["default_role"],
            acting_user=request.user,
        )
    except ApplicationError as error:
        return _sso_page(request, status=error.status_code, provider_error=error, typed=typed)
    messages.success(request, "Identity provider saved.")
    return redirect("portal:sso", org=request.org.slug)


@require_POST
@org_view()
def sso_policy(request: HttpRequest) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_IDENTITY)
    identity = identity_selectors.identity_get(org=request.org)
    try:
        identity_services.sso_policy_set(
            org=request.org,
            require_sso=request.POST.get("require_sso") == "on",
            require_mfa_for_admins=request.POST.get("require_mfa_for_admins") == "on",
            default_role=request.POST.get("default_role", identity.sso_default_role),
            acting_user=request.user,
        )
    except ApplicationError as error:
        return _sso_page(request, status=error.status_code, policy_error=error)
    messages.success(request, "Sign-in policy saved; it applies within a minute.")
    return redirect("portal:sso", org=request.org.slug)


@require_POST
@org_view()
def sso_domain_add(request: HttpRequest) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_IDENTITY)
    typed = request.POST.get("domain", "")
    try:
        domain = identity_services.org_domain_add(org=request.org, domain=typed, acting_user=request.user)
    except ApplicationError as error:
        return _sso_page(request, status=error.status_code, domain_error=error, typed_domain=typed)
    messages.success(request, f"{domain.domain} added; it routes sign-ins once the vendor has verified it.")
    return redirect("portal:sso", org=request.org.slug)


@require_POST
@org_view()
def sso_domain_remove(request: HttpRequest, domain_id: int) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_IDENTITY)
    domain = identity_selectors.domain_get(org=request.org, domain_id=domain_id)
    try:
        identity_services.org_domain_remove(domain=domain, acting_user=request.user)
    except ApplicationError as error:
        return _sso_page(request, status=error.status_code, domain_error=error)
    messages.success(request, f"{domain.domain} removed.")
    return redirect("portal:sso", org=request.org.slug)


@require_POST
@org_view()
def scim_token_create(request: HttpRequest) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_IDENTITY)
    try:
        token, raw = provisioning.scim_token_create(
            org=request.org, name=request.POST.get("name", ""), acting_user=request.user
        )
    except ApplicationError as error:
        return _sso_page(request, status=error.status_code, scim_error=error)
    # The secret exists only in this response.
    response = _sso_page(request, status=201, new_scim_token=token, raw_scim_token=raw)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@org_view()
def scim_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_IDENTITY)
    token = identity_selectors.scim_token_get(org=request.org, token_id=token_id)
    provisioning.scim_token_revoke(token=token, acting_user=request.user)
    messages.success(request, f"SCIM token “{token.name}” is revoked; provisioning with it now fails.")
    return redirect("portal:sso", org=request.org.slug)


@require_POST
@org_view()
def scim_group_role(request: HttpRequest, group_id: int) -> HttpResponse:
    permission_require(request.membership.role, Permission.MANAGE_IDENTITY)
    group = identity_selectors.scim_group_get(org=request.org, group_id=group_id)
    try:
        provisioning.scim_group_role_set(
            group=group, role=request.POST.get("role", ""), acting_user=request.user
        )
    except ApplicationError as error:
        return _sso_page(request, status=error.status_code, scim_error=error)
    messages.success(request, f"Members of “{group.display_name}” now get the role you chose.")
    return redirect("portal:sso", org=request.org.slug)
