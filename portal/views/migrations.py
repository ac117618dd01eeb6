"""Migrations, the consent history and the contract terms of one organisation.

Deciding a migration is two steps: GET shows a confirmation with the exact terms version and sha256
and a link to the diff; POST records the decision. With htmx both happen in place; without
JavaScript they are ordinary pages and forms.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Case, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contracts.catalog import selectors as catalog_selectors
from contracts.consent import selectors, services
from contracts.errors import ApplicationError
from contracts.instants import parse_instant
from contracts.ledger.verify import ledger_verify
from contracts.ledger.words import record_words
from contracts.models import OPEN_MIGRATION_STATES, LedgerAction, Migration, MigrationState
from contracts.pins import selectors as pins_selectors
from contracts.pins.selectors import effective_retirement
from contracts.renewal import selectors as renewal_selectors
from contracts.tenancy.auth import client_ip
from contracts.tenancy.roles import Permission
from portal.access import may, org_view
from portal.paging import key_page
from portal.views.billing import offer_for

PAGE_SIZE = 25
# Pins needing a way forward are shown a few at a time above the list (their own pager).
WAYS_FORWARD_PAGE_SIZE = 5

ACTIONS = {
    "consent": ("Consent", "The pin moves now, or on the date you choose (before the deadline)."),
    "defer": ("Defer", "Postpone the decision to a date the terms allow."),
    "decline": ("Decline", "Stay on the current snapshot; this proposal closes."),
    "rollback": ("Roll back", "Move the pin back to the snapshot it left, within the rollback window."),
}


def request_decider(request: HttpRequest) -> services.Decider:
    return services.Decider(
        user=request.user,
        ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
        role=request.membership.role,
    )


def _parse_date(value: str, *, field: str, end_of_day: bool = False) -> dt.datetime | None:
    """An HTML date (YYYY-MM-DD) or datetime-local (YYYY-MM-DDTHH:MM) input, read in the reader's
    time zone (the one the page shows and names)."""
    if not (value or "").strip():
        return None
    zone = timezone.get_current_timezone()
    return parse_instant(value, field=field, zone=zone, end_of_day=end_of_day, bounded=True)


def _migration_context(request: HttpRequest, migration: Migration) -> dict:
    terms = selectors.terms_in_force(org=request.org)
    now = timezone.now()
    return {
        "migration": migration,
        "terms": terms,
        "now": now,
        "diff_url": selectors.diff_url(org=request.org, migration=migration),
        "diff_sha256": selectors.diff_sha256(
            org=request.org, from_snapshot=migration.from_snapshot, to_snapshot=migration.to_snapshot
        ),
        "deferral_limit": services.deferral_limit(migration=migration, terms=terms)
        if migration.is_open
        else None,
        "rollback_end": services.rollback_window_end(migration=migration, terms=terms),
        "can_decide": may(request, Permission.DECIDE_MIGRATIONS),
        "actions": _available_actions(migration, terms=terms, now=now),
        "retirement": effective_retirement(org=request.org, snapshot=migration.from_snapshot, at=now),
    }


def _available_actions(migration: Migration, *, terms, now: dt.datetime) -> list[tuple[str, str]]:
    expired = migration.deadline is not None and now >= migration.deadline
    if migration.state in (MigrationState.PROPOSED, MigrationState.DEFERRED) and not expired:
        return [(name, ACTIONS[name][0]) for name in ("consent", "defer", "decline")]
    if migration.state == MigrationState.APPLIED:
        end = services.rollback_window_end(migration=migration, terms=terms)
        if end and now <= end:
            return [("rollback", ACTIONS["rollback"][0])]
    return []


@require_GET
@org_view()
def migration_list(request: HttpRequest) -> HttpResponse:
    return render(request, "contracts/migrations/list.html", _list_context(request))


def _list_context(request: HttpRequest) -> dict:
    state = request.GET.get("state") or ""
    # Open migrations first, then the decided ones; a page of PAGE_SIZE of them at a time.
    ordered = selectors.migration_list(org=request.org, state=state or None).order_by(
        Case(When(state__in=OPEN_MIGRATION_STATES, then=0), default=1), "-proposed_at", "-id"
    )
    page = key_page(ordered, PAGE_SIZE, request.GET.get("page"))
    migrations = list(page.object_list)
    open_migrations = [m for m in migrations if m.is_open]
    closed = [m for m in migrations if not m.is_open]
    terms = selectors.terms_in_force(org=request.org)
    now = timezone.now()
    rows = [
        {
            "migration": m,
            "actions": _available_actions(m, terms=terms, now=now),
            "diff_url": selectors.diff_url(org=request.org, migration=m),
        }
        for m in open_migrations + closed
    ]
    return {
        "open_rows": rows[: len(open_migrations)],
        "closed_rows": rows[len(open_migrations) :],
        "page": page,
        "states": MigrationState.choices,
        "state": state,
        "terms": terms,
        "now": now,
        "can_decide": may(request, Permission.DECIDE_MIGRATIONS),
        **_ways_forward_page(request, now),
    }


def _ways_forward_page(request: HttpRequest, now: dt.datetime) -> dict:
    """One page of the pins that need a way forward (`wf_page`), with their exact count."""
    page = key_page(
        selectors.ways_forward_pins(org=request.org, at=now),
        WAYS_FORWARD_PAGE_SIZE,
        request.GET.get("wf_page"),
    )
    return {
        "ways_forward": selectors.ways_forward(org=request.org, at=now, pins=page.object_list),
        "ways_forward_page": page,
    }


@require_POST
@org_view(Permission.DECIDE_MIGRATIONS)
def pin_propose(request: HttpRequest, pin_id: int) -> HttpResponse:
    """A way forward asked for by the customer: propose the chosen snapshot, then review and
    consent on the usual confirmation page (the consent is the ledger record)."""
    pin = pins_selectors.pin_get(org=request.org, pin_id=pin_id)
    name = request.POST.get("to_snapshot", "")[:100]
    try:
        to_snapshot = catalog_selectors.snapshot_get(name=name)
        migration = services.migration_request(
            org=request.org, pin=pin, to_snapshot=to_snapshot, decider=request_decider(request)
        )
    except ApplicationError as error:
        context = _list_context(request)
        context["forward_error"] = {"pin_id": pin.pk, "message": error.message, "selected": name}
        # The refused pin is shown with its error, whichever page of ways forward it is on.
        forward = selectors.way_forward(org=request.org, pin=pin)
        if forward is not None:
            context["ways_forward"] = [forward]
            context["ways_forward_page"] = None
        return render(request, "contracts/migrations/list.html", context, status=error.status_code)
    return redirect(
        reverse("portal:migration_consent", kwargs={"org": request.org.slug, "migration_id": migration.pk})
    )


@require_GET
@org_view()
def migration_detail(request: HttpRequest, migration_id: int) -> HttpResponse:
    migration = selectors.migration_get(org=request.org, migration_id=migration_id)
    return render(request, "contracts/migrations/detail.html", migration_page_context(request, migration))


def migration_page_context(request: HttpRequest, migration: Migration) -> dict:
    context = _migration_context(request, migration)
    context["records"] = selectors.migration_records(migration=migration)
    # Renewal: the procurement suites that can be re-run on the proposed snapshot, and those runs.
    context["refresh_suites"] = renewal_selectors.migration_refresh_suites(
        org=request.org, migration=migration
    )
    context["may_refresh"] = may(request, Permission.REQUEST_EVAL_REFRESH)
    context["eval_runs"] = [
        run
        for run in renewal_selectors.eval_run_list(org=request.org)
        if run.snapshot_id == migration.to_snapshot_id
    ]
    context["offer"] = offer_for(request.org, migration.from_snapshot) if migration.is_open else None
    forward = selectors.way_forward(org=request.org, pin=migration.pin)
    context["ways_forward"] = [forward] if forward is not None and not migration.is_open else []
    return context


def _decide(
    request: HttpRequest, migration_id: int, action: str, perform: Callable[..., object]
) -> HttpResponse:
    migration = selectors.migration_get(org=request.org, migration_id=migration_id)
    context = _migration_context(request, migration)
    context.update(action=action, action_label=ACTIONS[action][0], action_help=ACTIONS[action][1])
    if action == "consent" and migration.is_open:
        facts = selectors.consent_facts(org=request.org, migration=migration, terms=context["terms"])
        context.update(facts=facts, facts_sha256=selectors.consent_facts_sha256(facts))
    if request.method == "GET":
        template = (
            "contracts/migrations/_confirm.html" if request.htmx else "contracts/migrations/confirm.html"
        )
        return render(request, template, context)
    try:
        record = perform(migration=migration, decider=request_decider(request), post=request.POST)
    except ApplicationError as error:
        if not request.htmx:
            raise
        # htmx swaps only 2xx responses: show the refusal inside the confirmation box.
        context["error"] = error
        return render(request, "contracts/migrations/_confirm.html", context)
    migration = selectors.migration_get(org=request.org, migration_id=migration_id)
    if request.htmx:
        context = _migration_context(request, migration)
        context["record"] = record
        return render(request, "contracts/migrations/_decided.html", context)
    messages.success(
        request, f"Recorded in the consent ledger as record #{record.seq} ({record.hash[:16]}…)."
    )
    return redirect(
        reverse("portal:migration_detail", kwargs={"org": request.org.slug, "migration_id": migration.pk})
    )


@require_http_methods(["GET", "POST"])
@org_view(Permission.DECIDE_MIGRATIONS)
def migration_consent(request: HttpRequest, migration_id: int) -> HttpResponse:
    def perform(*, migration, decider, post):
        return services.migration_consent(
            migration=migration,
            decider=decider,
            scheduled_for=_parse_date(post.get("at", ""), field="at"),
            expected_terms_sha256=post.get("terms_sha256") or None,
            shown_sha256=post.get("shown_sha256") or None,
        )

    return _decide(request, migration_id, "consent", perform)


@require_http_methods(["GET", "POST"])
@org_view(Permission.DECIDE_MIGRATIONS)
def migration_defer(request: HttpRequest, migration_id: int) -> HttpResponse:
    def perform(*, migration, decider, post):
        until = _parse_date(post.get("until", ""), field="until")
        if until is None:
            raise ApplicationError("Choose the date to defer until.", fields={"until": "Required."})
        return services.migration_defer(
            migration=migration,
            decider=decider,
            until=until,
            expected_terms_sha256=post.get("terms_sha256") or None,
        )

    return _decide(request, migration_id, "defer", perform)


@require_http_methods(["GET", "POST"])
@org_view(Permission.DECIDE_MIGRATIONS)
def migration_decline(request: HttpRequest, migration_id: int) -> HttpResponse:
    def perform(*, migration, decider, post):
        return services.migration_decline(
            migration=migration, decider=decider, expected_terms_sha256=post.get("terms_sha256") or None
        )

    return _decide(request, migration_id, "decline", perform)


@require_http_methods(["GET", "POST"])
@org_view(Permission.DECIDE_MIGRATIONS)
def migration_rollback(request: HttpRequest, migration_id: int) -> HttpResponse:
    def perform(*, migration, decider, post):
        return services.migration_rollback(
            migration=migration, decider=decider, expected_terms_sha256=post.get("terms_sha256") or None
        )

    return _decide(request, migration_id, "rollback", perform)


@require_GET
@org_view()
def consent_history(request: HttpRequest) -> HttpResponse:
    action = request.GET.get("action") or ""
    if action and action not in LedgerAction.values:
        raise ApplicationError(
            f"Unknown action {action!r}.", fields={"action": f"One of: {', '.join(LedgerAction.values)}."}
        )
    since = _parse_date(request.GET.get("from", ""), field="from")
    until = _parse_date(request.GET.get("to", ""), field="to", end_of_day=True)
    page = Paginator(
        selectors.consent_list(org=request.org, action=action or None, since=since, until=until), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    for record in page.object_list:
        record.words = record_words(record)
    context = {
        "records": page.object_list,
        "page": page,
        # IP addresses and User-Agents only for the roles that may export them.
        "show_client": may(request, Permission.EXPORT_LEDGER),
        "actions": LedgerAction.choices,
        "filters": {"action": action, "from": request.GET.get("from", ""), "to": request.GET.get("to", "")},
    }
    if request.htmx:
        return render(request, "contracts/consents/_table.html", context)
    return render(request, "contracts/consents/list.html", context)


@require_GET
@org_view()
def terms_page(request: HttpRequest) -> HttpResponse:
    pending = selectors.terms_pending(org=request.org)
    current = selectors.terms_current(tier=request.org.tier)
    accepted = request.org.accepted_terms
    version = request.GET.get("version")
    shown = (
        selectors.terms_get(org=request.org, version=version) if version else (pending or accepted or current)
    )
    return render(
        request,
        "contracts/terms/page.html",
        {
            "shown": shown,
            "pending": pending,
            "accepted": accepted,
            "history": selectors.terms_list(org=request.org),
            "can_accept": may(request, Permission.ACCEPT_TERMS),
        },
    )


@require_POST
@org_view(Permission.ACCEPT_TERMS)
def terms_accept(request: HttpRequest) -> HttpResponse:
    terms = selectors.terms_get(org=request.org, version=request.POST.get("version", ""))
    shown_sha = request.POST.get("body_sha256", "")
    if shown_sha and shown_sha != terms.body_sha256:
        raise ApplicationError(
            "These terms are not the text you were shown; reload and read them again.",
            fields={"body_sha256": terms.body_sha256},
        )
    record = services.terms_accept(
        org=request.org,
        terms=terms,
        decider=request_decider(request),
        confirmed=request.POST.get("confirm") == "on",
    )
    messages.success(
        request, f"You accepted terms {terms.version}. Ledger record #{record.seq} ({record.hash[:16]}…)."
    )
    return redirect(reverse("portal:terms", kwargs={"org": request.org.slug}))


@require_GET
@org_view()
def consent_verify(request: HttpRequest) -> HttpResponse:
    """The chain verification as a page a person reads (the JSON is one link away)."""
    result = ledger_verify(org=request.org)
    return render(request, "contracts/consents/verify.html", {"result": result})
