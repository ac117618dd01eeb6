"""Notices in batches: one claim for many notices, each template rendered once per batch context,
one SMTP connection per batch, outcomes recorded together, queries that do not grow with the batch."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contracts.models import Alias, Role, Snapshot, UsageHour
from notifications import emails, services, tasks
from notifications.models import CalendarToken, Notice, NoticeStatus, Unsubscription
from tests import factories as f
from tests.notifications.conftest import deprecate

pytestmark = pytest.mark.django_db


def many_orgs(n: int, *, name: str = "Org"):
    family = f.FamilyFactory(slug="bt")
    old = f.SnapshotFactory(family=family, name="bt-old", released_at=f.days(-300))
    new = f.SnapshotFactory(family=family, name="bt-new", released_at=f.days(-10))
    alias = f.make_alias(name="bt-chat", target=old, at=f.days(-299))
    orgs = []
    for i in range(n):
        org = f.OrganizationFactory(slug=f"bt{i}", name=f"{name} {i}")
        f.MembershipFactory(organization=org, role=Role.ADMIN, user__username=f"bt{i}-admin")
        f.MembershipFactory(organization=org, role=Role.LEGAL, user__username=f"bt{i}-legal")
        f.make_pin(org=org, alias=alias, snapshot=old, at=f.days(-200))
        orgs.append(org)
    deprecate(old, deprecated_at=f.days(-1), retires_at=f.days(200), replacement=new)
    return orgs


class CountingSmtp:
    """Counts how many connections a batch opens (the locmem backend stands in for the wire)."""

    opened = 0

    @classmethod
    def backend(cls):
        from django.core.mail.backends.locmem import EmailBackend

        class Backend(EmailBackend):
            def open(self):
                cls.opened += 1
                return True

        return Backend


def test_a_batch_claims_sends_and_records_every_notice_once(settings):
    many_orgs(12)
    assert services.notices_plan() == 12
    ids = list(Notice.objects.values_list("id", flat=True))
    counts = tasks.send_notices.apply(args=[ids + ids]).get()  # duplicates in the batch are harmless
    assert counts == {NoticeStatus.SENT: 12}
    assert len(mail.outbox) == 24
    assert len({m.extra_headers["Message-ID"] for m in mail.outbox}) == 24
    assert set(Notice.objects.values_list("status", "attempts")) == {(NoticeStatus.SENT, 1)}
    assert tasks.send_notices.apply(args=[ids]).get() == {}  # a second copy finds nothing to claim


def test_one_smtp_connection_and_one_rendering_per_batch_context(settings, monkeypatch):
    many_orgs(10)
    services.notices_plan()
    settings.EMAIL_BACKEND = "tests.notifications.test_batches.Backend"
    CountingSmtp.opened = 0
    renders = []
    real = emails.BatchRenderer.messages

    def spy(self, notice, recipients, **kwargs):
        result = real(self, notice, recipients, **kwargs)
        renders.append(self.renders)
        return result

    monkeypatch.setattr(emails.BatchRenderer, "messages", spy)
    notices = services.notices_claim(notice_ids=list(Notice.objects.values_list("id", flat=True)), worker="t")
    outcomes = services.notices_deliver(notices=notices)
    assert [o.status for o in outcomes] == [NoticeStatus.SENT] * 10
    assert CountingSmtp.opened == 1
    assert renders[-1] == 1  # ten organisations, one milestone: the templates rendered once


Backend = CountingSmtp.backend()


def test_batch_rendering_equals_rendering_each_message_on_its_own():
    with time_machine.travel(timezone.now(), tick=False):  # the signed ack links carry the time
        orgs = many_orgs(3, name='Acme <&> "Quoted"')
        services.calendar_token_regenerate(org=orgs[1])
        Unsubscription.objects.create(organization=orgs[2], email="nobody@example.com")
        services.notices_plan()
        services.notice_send_adhoc(
            org=orgs[0], kind="billing", subject="Invoice <1>", body="Line & more", dedupe_key="inv-1"
        )
        notices = services.notices_claim(
            notice_ids=list(Notice.objects.values_list("id", flat=True)), worker="t"
        )
        recipients = services.notices_recipients(notices=notices)
        renderer = emails.BatchRenderer(
            calendar_tokens=dict(CalendarToken.objects.values_list("organization_id", "token"))
        )
        compared = 0
        html = []
        for notice in notices:
            truth = services.notice_truth(notice=notice)  # as notices_deliver passes it (#13)
            batch = renderer.messages(notice, recipients[notice.pk], truth=truth)
            alone = emails.build_messages(
                notice, recipients[notice.pk], emails.notice_context(notice, truth=truth)
            )
            for a, b in zip(batch, alone, strict=True):
                assert (a.subject, a.body, a.alternatives[0][0], a.to, a.extra_headers) == (
                    b.subject,
                    b.body,
                    b.alternatives[0][0],
                    b.to,
                    b.extra_headers,
                )
                compared += 1
                html.append(a.alternatives[0][0])
        assert compared == 8
        assert renderer.renders == 2  # the deprecation notice once for three organisations, the invoice once
        assert any("Acme &lt;&amp;&gt; &quot;Quoted&quot; 1" in h and "token=" in h for h in html)


def test_claiming_delivering_and_recording_a_batch_costs_the_same_queries_for_5_or_50(settings):
    many_orgs(55)
    services.notices_plan()
    ids = list(Notice.objects.order_by("id").values_list("id", flat=True))
    counts, progress, sent = [], [], []
    for batch in (ids[:5], ids[5:55]):
        before = len(mail.outbox)
        with CaptureQueriesContext(connection) as queries:
            tasks.send_notices.apply(args=[batch]).get()
        counts.append(len(queries))
        progress.append(sum('SET "sent_to"' in q["sql"] for q in queries.captured_queries))
        sent.append(len(mail.outbox) - before)
    # Each message sent adds exactly its one progress write (#18: nobody mailed twice after a crash);
    # everything else (claim, lookups, rendering, the record of outcomes) does not grow with the batch.
    assert progress == sent == [10, 100], (progress, sent)
    assert counts[0] - progress[0] == counts[1] - progress[1], counts
    assert Notice.objects.filter(status=NoticeStatus.SENT).count() == 55


def test_a_failure_in_the_middle_of_a_batch_retries_that_notice_and_sends_the_others(settings, monkeypatch):
    many_orgs(3)
    services.notices_plan()
    notices = services.notices_claim(notice_ids=list(Notice.objects.values_list("id", flat=True)), worker="t")
    doomed = notices[1].pk
    real = emails.BatchRenderer.messages

    def flaky(self, notice, recipients, **kwargs):
        if notice.pk == doomed:
            raise OSError("connection reset")
        return real(self, notice, recipients, **kwargs)

    monkeypatch.setattr(emails.BatchRenderer, "messages", flaky)
    outcomes = services.notices_deliver(notices=notices)
    assert services.notices_record(outcomes=outcomes) == 3
    statuses = dict(Notice.objects.values_list("id", "status"))
    assert statuses.pop(doomed) == NoticeStatus.PENDING
    assert set(statuses.values()) == {NoticeStatus.SENT}
    assert "connection reset" in Notice.objects.get(pk=doomed).last_error


class Crash(BaseException):
    """A worker killed mid-batch: nothing in the sender catches it."""


def test_a_crash_mid_batch_never_mails_a_recipient_already_reached_again(settings, monkeypatch):
    many_orgs(3)
    services.notices_plan()
    ids = list(Notice.objects.order_by("id").values_list("id", flat=True))
    notices = services.notices_claim(notice_ids=ids, worker="t")
    real = EmailBackend.send_messages

    def dies_on_the_fourth(self, messages):
        if len(mail.outbox) == 3:  # the first notice's two messages and the second's first went out
            raise Crash
        return real(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", dies_on_the_fourth)
    with pytest.raises(Crash):
        services.notices_deliver(notices=notices)
    reached = dict(Notice.objects.values_list("id", "sent_to"))
    assert len(reached[ids[0]]) == 2 and len(reached[ids[1]]) == 1 and not reached[ids[2]]
    assert set(Notice.objects.values_list("status", flat=True)) == {NoticeStatus.SENDING}

    monkeypatch.setattr(EmailBackend, "send_messages", real)
    first = [(m.extra_headers["X-Notice-Id"], m.to[0]) for m in mail.outbox]
    # The lease runs out; another worker takes the batch over.
    Notice.objects.update(lease_until=f.days(-1))
    assert tasks.send_notices.apply(args=[ids]).get() == {NoticeStatus.SENT: 3}
    again = [(m.extra_headers["X-Notice-Id"], m.to[0]) for m in mail.outbox[3:]]
    assert len(again) == 3 and not set(again) & set(first)
    assert len(set(first + again)) == 6
    assert all(len(n) == 2 for n in Notice.objects.values_list("sent_to", flat=True))


def test_each_organisation_reads_its_own_recent_use_in_a_batch_and_the_batch_queries_it_once(settings):
    orgs = many_orgs(3)
    alias, old = Alias.objects.get(name="bt-chat"), Snapshot.objects.get(name="bt-old")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for org, rows in ((orgs[0], [(2, 5), (20 * 24, 7)]), (orgs[1], [(1, 11)])):
        for hours_ago, requests in rows:
            UsageHour.objects.create(
                organization=org,
                alias=alias,
                snapshot=old,
                hour=hour - dt.timedelta(hours=hours_ago),
                requests=requests,
            )
    with time_machine.travel(timezone.now(), tick=False):  # the signed ack links carry the time
        services.notices_plan()
        ids = list(Notice.objects.values_list("id", flat=True))
        with CaptureQueriesContext(connection) as queries:
            tasks.send_notices.apply(args=[ids]).get()
        assert sum('"contracts_usagehour"' in q["sql"] for q in queries.captured_queries) == 1
        sent = {(m.extra_headers["X-Notice-Id"], m.to[0]): m for m in mail.outbox}
        assert len(sent) == 6
        for notice in Notice.objects.select_related("organization", "snapshot__replacement"):
            context = emails.notice_context(notice, truth=services.notice_truth(notice=notice))
            for alone in emails.build_messages(notice, notice.sent_to, context):
                batch = sent[(str(notice.pk), alone.to[0])]
                assert (batch.body, batch.alternatives[0][0]) == (alone.body, alone.alternatives[0][0])
    bodies = {m.extra_headers["X-Notice-Id"]: m.body for m in mail.outbox}
    by_org = {n.organization_id: bodies[str(n.pk)] for n in Notice.objects.all()}
    assert "5 requests in the last 7 days, 12 in the last 30" in by_org[orgs[0].pk]
    assert "11 requests in the last 7 days, 11 in the last 30" in by_org[orgs[1].pk]
    assert "0 requests in the last 7 days, 0 in the last 30" in by_org[orgs[2].pk]
