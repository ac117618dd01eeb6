from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.bugs.receipts import receipt_issue
from contracts.bugs.selectors import ALIAS_SUGGESTIONS
from contracts.bugs.services import bug_report_file, bug_report_transition
from contracts.models import Alias, BugReport, BugStatus
from tests import factories as f
from tests.contracts.bug_support import POLICY, accept_terms

pytestmark = pytest.mark.django_db

URL = "/api/v1/bug-reports/"


def body(**overrides):
    data = {
        "alias": "v1-chat",
        "observed_at": f.days(-10).isoformat(),
        "prompt": "Summarise the contract.",
        "output": "I cannot.",
        "expected": "A summary.",
    }
    data.update(overrides)
    return data


def test_filing_over_the_api_answers_201_with_the_resolved_snapshot_and_policy(world, api):
    accept_terms(world.org)
    response = api.post(URL, body(response_id="resp_42"), key=world.key)
    assert response.status_code == 201, response.json()
    report = response.json()
    assert report["snapshot"]["id"] == world.old.name
    assert report["resolved_by"] == "history"
    assert report["reproducibility"]["code"] == "now"
    assert report["owning_team"] == world.family.owning_team
    assert report["policy"] == {"terms_version": "2025.1", "text": POLICY}
    assert report["status"] == "new"
    assert [e["status"] for e in report["history"]] == ["new"]
    assert report["url"] == f"/o/acme/bugs/{report['id']}/"
    assert api.get(f"{URL}{report['id']}/", key=world.key).json() == report


def test_naive_observed_time_is_a_400_asking_for_a_time_zone(world, api):
    response = api.post(URL, body(observed_at="2025-09-01T12:00:00"), key=world.key)
    assert response.status_code == 400
    assert "time zone" in response.json()["error"]["message"]
    assert "observed_at" in response.json()["error"]["fields"]
    assert not BugReport.objects.exists()


def test_future_observed_time_is_a_400_saying_so(world, api):
    response = api.post(URL, body(observed_at=f.days(3).isoformat()), key=world.key)
    assert response.status_code == 400
    assert "in the future" in response.json()["error"]["message"]


def test_observed_time_before_the_alias_existed_is_a_400_saying_so(world, api):
    response = api.post(URL, body(observed_at="2001-01-01T00:00:00Z"), key=world.key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "before alias 'v1-chat' existed" in error["message"]
    assert "observed_at" in error["fields"]


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "not a date"])
def test_extreme_or_garbled_times_are_400_not_500(world, api, value):
    assert api.post(URL, body(observed_at=value), key=world.key).status_code == 400


def test_receipt_of_another_organisation_is_a_400_and_nothing_is_stored(world, api, signing_keys):
    receipt = receipt_issue(
        org=world.other_org, alias="v1-chat", snapshot=world.current, response_id="r", at=f.days(-1)
    )
    response = api.post(URL, {"receipt": receipt}, key=world.key)
    assert response.status_code == 400
    assert "another organisation" in response.json()["error"]["message"]
    assert not BugReport.objects.exists()


def test_receipt_alone_is_enough_to_file_and_decides_the_snapshot(world, api, signing_keys):
    receipt = receipt_issue(
        org=world.org, alias="v1-chat", snapshot=world.current, response_id="r7", at=f.days(-2)
    )
    response = api.post(URL, {"receipt": receipt, "output": "odd"}, key=world.key)
    assert response.status_code == 201, response.json()
    assert response.json()["snapshot"]["id"] == world.current.name
    assert response.json()["resolved_by"] == "receipt"
    assert response.json()["receipt"] == receipt


def test_another_organisations_report_id_is_404_by_key_and_by_session(world, api, client):
    report = bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-5))
    assert api.get(f"{URL}{report.pk}/", key=world.other_key).status_code == 404
    client.force_login(world.outsider)
    assert client.get(f"{URL}{report.pk}/").status_code == 404
    assert client.get(f"/o/{world.org.slug}/bugs/{report.pk}/").status_code == 404
    assert client.get(f"/o/{world.other_org.slug}/bugs/{report.pk}/").status_code == 404


def test_legal_role_reads_but_does_not_file(world, client):
    client.force_login(world.legal)
    response = client.post(URL, body(), content_type="application/json")
    assert response.status_code == 403
    assert client.get(f"/o/{world.org.slug}/bugs/").status_code == 200
    assert client.post(f"/o/{world.org.slug}/bugs/new/", body()).status_code == 403
    assert not BugReport.objects.exists()


def test_report_detail_makes_a_bounded_number_of_queries_however_long_its_history(world, api, staff):
    report = bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-5))
    url = f"{URL}{report.pk}/"
    api.get(url, key=world.key)
    with CaptureQueriesContext(connection) as short:
        api.get(url, key=world.key)
    for status in (BugStatus.REPRODUCING, BugStatus.REPRODUCED, BugStatus.CLOSED):
        bug_report_transition(report=report, status=status, acting_user=staff)
    with CaptureQueriesContext(connection) as long:
        response = api.get(url, key=world.key)
    assert len(response.json()["history"]) == 4
    assert len(long) == len(short) <= 6, [q["sql"] for q in long]


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def test_member_files_through_the_page_and_lands_on_the_report(world, client):
    accept_terms(world.org)
    client.force_login(world.member)
    response = client.post(
        f"/o/{world.org.slug}/bugs/new/",
        {
            "alias": "v1-chat",
            "observed_at": f.days(-10).strftime("%Y-%m-%dT%H:%M"),
            "tz": "Europe/Paris",
            "prompt": "p",
            "output": "o",
            "expected": "e",
        },
    )
    report = BugReport.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/o/acme/bugs/{report.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert world.old.name in page and "Reproducible now" in page and POLICY in page
    assert world.family.owning_team in page
    assert f"#{report.pk}" in client.get(f"/o/{world.org.slug}/bugs/").content.decode()


def test_page_form_errors_are_shown_and_nothing_is_stored(world, client):
    client.force_login(world.member)
    response = client.post(
        f"/o/{world.org.slug}/bugs/new/",
        {"alias": "v1-chat", "observed_at": f.days(5).strftime("%Y-%m-%dT%H:%M"), "tz": "UTC"},
    )
    assert response.status_code == 400
    assert "in the future" in response.content.decode()
    assert not BugReport.objects.exists()


def test_the_filing_form_suggests_a_bounded_list_of_aliases_pinned_first_and_any_may_be_typed(world, client):
    Alias.objects.bulk_create(
        Alias(name=f"aa-{i:03d}", family=world.family, target=world.old)
        for i in range(ALIAS_SUGGESTIONS + 50)
    )
    f.make_alias(name="zz-unpinned", target=world.current, at=f.days(-60))
    client.force_login(world.member)
    page = client.get(f"/o/{world.org.slug}/bugs/").content.decode()
    offered = re.findall(r'<option value="([^"]+)"></option>', page.split('id="alias-suggestions"')[1])
    assert len(offered) == ALIAS_SUGGESTIONS
    assert offered[:3] == ["v1-chat", "aa-000", "aa-001"] and "zz-unpinned" not in offered
    response = client.post(
        f"/o/{world.org.slug}/bugs/new/",
        {"alias": "zz-unpinned", "observed_at": f.days(-10).strftime("%Y-%m-%dT%H:%M"), "tz": "UTC"},
    )
    assert response.status_code == 302 and BugReport.objects.get().alias.name == "zz-unpinned"


def test_an_unknown_alias_typed_in_the_form_is_an_error_on_the_page_keeping_what_was_typed(world, client):
    client.force_login(world.member)
    response = client.post(
        f"/o/{world.org.slug}/bugs/new/",
        {"alias": "v1-chta", "observed_at": "2026-01-02T03:04", "tz": "Europe/Paris", "prompt": "Why?"},
    )
    page = response.content.decode()
    assert (
        response.status_code == 400 and 'role="alert"' in page and "Unknown alias &#x27;v1-chta&#x27;" in page
    )
    assert 'id="id_alias" name="alias"' in page and 'value="v1-chta"' in page
    assert 'value="2026-01-02T03:04"' in page and ">Why?</textarea>" in page
    assert '<option value="Europe/Paris" selected>' in page
    assert not BugReport.objects.exists()


def test_the_page_filters_by_status_and_search(world, client):
    kept = bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-5), response_id="resp-kept")
    closed = bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-5), response_id="resp-gone")
    BugReport.objects.filter(pk=closed.pk).update(status=BugStatus.CLOSED)
    client.force_login(world.legal)

    def shown(query: str) -> set[int]:
        page = client.get(f"/o/{world.org.slug}/bugs/?{query}").content.decode()
        return {int(n) for n in re.findall(r'/bugs/(\d+)/">#', page)}

    assert shown("") == {kept.pk, closed.pk}
    assert shown("status=closed") == {closed.pk}
    assert shown("q=RESP-KEPT") == {kept.pk}
    assert shown("q=chat-2025-01") == {kept.pk, closed.pk}  # the snapshot's name
    assert shown("status=nonsense") == {kept.pk, closed.pk}  # ignored, as on the dashboard
    page = client.get(f"/o/{world.org.slug}/bugs/?status=fixed").content.decode()
    assert "No bug reports match these filters." in page
    refused = client.get(f"/o/{world.org.slug}/bugs/?q=a%00b")
    assert refused.status_code == 400 and "control characters" in refused.content.decode()


def test_staff_pages_are_404_to_customers(world, client):
    report = bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-5))
    client.force_login(world.admin)
    assert client.get("/staff/bugs/").status_code == 404
    assert client.get(f"/staff/bugs/{report.pk}/").status_code == 404
    assert client.post(f"/staff/bugs/{report.pk}/status/", {"status": "reproducing"}).status_code == 404
    assert BugReport.objects.get().status == BugStatus.NEW


def test_staff_queue_filters_and_the_htmx_partial(world, client, staff):
    report = bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-5))
    client.force_login(staff)
    page = client.get("/staff/bugs/").content.decode()
    assert f"/staff/bugs/{report.pk}/" in page
    assert (
        f"/staff/bugs/{report.pk}/" not in client.get("/staff/bugs/?snapshot_status=retired").content.decode()
    )
    partial = client.get("/staff/bugs/?family=chat", HTTP_HX_REQUEST="true").content.decode()
    assert f"/staff/bugs/{report.pk}/" in partial and "<html" not in partial
    assert client.get("/staff/bugs/?age=forever").status_code == 400


def test_staff_answer_cannot_reproduce_with_the_policy_and_the_customer_sees_it(world, client, staff):
    accept_terms(world.org)
    world.old.deprecated_at, world.old.retires_at, world.old.retention_until = (
        f.days(-60),
        f.days(-30),
        f.days(-1),
    )
    world.old.save(update_fields=["deprecated_at", "retires_at", "retention_until"])
    report = bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-100))
    client.force_login(staff)
    response = client.post(
        f"/staff/bugs/{report.pk}/status/", {"status": "cannot-reproduce", "note": "ignored free text"}
    )
    assert response.status_code == 302
    client.force_login(world.member)
    page = client.get(f"/o/{world.org.slug}/bugs/{report.pk}/").content.decode()
    assert "Gone" in page and "Cannot reproduce (artifact gone)" in page
    assert page.count(POLICY) == 2  # the policy section and the answer in the history
    assert "ignored free text" not in page


def test_staff_page_offers_artifact_gone_only_for_a_purged_snapshot(world, client, staff):
    report = bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-5))
    client.force_login(staff)
    assert 'value="cannot-reproduce"' not in client.get(f"/staff/bugs/{report.pk}/").content.decode()
    world.old.deprecated_at, world.old.retires_at, world.old.retention_until = (
        f.days(-60),
        f.days(-30),
        f.days(-1),
    )
    world.old.save(update_fields=["deprecated_at", "retires_at", "retention_until"])
    assert 'value="cannot-reproduce"' in client.get(f"/staff/bugs/{report.pk}/").content.decode()


def test_staff_refused_transition_is_shown_on_the_page(world, client, staff):
    report = bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-5))
    client.force_login(staff)
    response = client.post(f"/staff/bugs/{report.pk}/status/", {"status": "closed"})
    assert response.status_code == 409
    assert "cannot become closed" in response.content.decode()


def test_nul_characters_are_a_400_not_a_database_error(world, api):
    response = api.post(URL, body(prompt="a\x00b"), key=world.key)
    assert response.status_code == 400
    assert not BugReport.objects.exists()


def test_a_key_can_name_who_gets_the_status_emails(world, api, staff, django_capture_on_commit_callbacks):
    from django.core import mail

    response = api.post(URL, body(reporter_email="oncall@acme.example"), key=world.key)
    report = BugReport.objects.get(pk=response.json()["id"])
    with django_capture_on_commit_callbacks(execute=True):
        bug_report_transition(report=report, status=BugStatus.REPRODUCING, acting_user=staff)
    assert mail.outbox[-1].to == ["oncall@acme.example"]


def test_list_pages_make_the_same_number_of_queries_for_one_report_or_many(world, client, staff):
    def file_one():
        bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-5))

    file_one()
    client.force_login(world.member)
    client.get(f"/o/{world.org.slug}/bugs/")
    with CaptureQueriesContext(connection) as one:
        client.get(f"/o/{world.org.slug}/bugs/")
    for _ in range(4):
        file_one()
    with CaptureQueriesContext(connection) as five:
        page = client.get(f"/o/{world.org.slug}/bugs/").content.decode()
    assert page.count("/bugs/") >= 5
    assert len(five) == len(one), [q["sql"] for q in five]
    client.force_login(staff)
    client.get("/staff/bugs/")
    with CaptureQueriesContext(connection) as queue:
        client.get("/staff/bugs/")
    file_one()
    with CaptureQueriesContext(connection) as queue_more:
        client.get("/staff/bugs/")
    assert len(queue_more) == len(queue)
