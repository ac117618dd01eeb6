"""SCIM 2.0 checked by scim2-tester (the SCIM compliance checker from PyPI) over HTTP against the
live server (pytest-django's, on 127.0.0.1), with a throw-away organisation: it creates, patches and
deletes users and groups of its own."""

from __future__ import annotations

import collections

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from contracts.identity import provisioning
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)

FAILED = (Status.ERROR, Status.CRITICAL)


def test_scim2_tester_finds_no_errors(live_server):
    org = f.OrganizationFactory(slug="scim-check", name="SCIM check")
    _token, raw = provisioning.scim_token_create(org=org)
    client = SyncSCIMClient(
        httpx2.Client(base_url=f"{live_server.url}/scim/v2", headers={"Authorization": f"Bearer {raw}"})
    )
    client.discover()
    results = check_server(client)
    counts = collections.Counter(r.status.name for r in results)
    failures = [
        f"{r.status.name} {r.resource_type} {r.title}: {(r.reason or '')[:300]}"
        for r in results
        if r.status in FAILED
    ]
    print(dict(counts), "of", len(results))
    assert failures == [], "\n".join(failures)
