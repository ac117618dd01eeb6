"""Fixtures of the data-plane tests: a gateway key beside the shared world."""

from __future__ import annotations

import pytest

from tests import factories as f


@pytest.fixture
def gateway(db):
    gateway, raw = f.make_gateway()
    gateway.raw_key = raw
    return gateway
