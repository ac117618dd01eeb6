"""Schemathesis over the whole OpenAPI schema: no 5xx and no response that breaks the schema.

The schema is read from the running project at /api/schema/, so endpoints added later are covered by
this same test. Examples are bounded per operation to keep the suite fast.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from portal.wsgi import application

pytestmark = pytest.mark.django_db(transaction=False)

MAX_EXAMPLES = 8


@pytest.fixture
def api_schema(db):
    # Like Django's test client: keep the test's database connection open across WSGI calls.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.from_wsgi("/api/schema/?format=json", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_never_errors_and_matches_its_schema(case, world):
    response = case.call_wsgi(headers={"Authorization": f"Bearer {world.key}"})
    case.validate_response(
        response, checks=(not_a_server_error, response_schema_conformance, status_code_conformance)
    )


def test_schema_documents_every_api_route():
    from django.test import Client

    paths = Client().get("/api/schema/?format=json").json()["paths"]
    for expected in ("/api/v1/resolve/{alias}/", "/api/v1/pins/", "/api/v1/snapshots/"):
        assert expected in paths
