"""key_page: a page read by its keys first, then its rows (portal/paging.py)."""

from __future__ import annotations

import pytest

from contracts.models import Organization
from portal.paging import key_page
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def orgs():
    return [f.OrganizationFactory(slug=f"org-{i:02d}", name=f"Org {i:02d}") for i in range(12)]


def test_a_page_keeps_the_queryset_order_and_its_rows_are_models(orgs):
    queryset = Organization.objects.filter(slug__startswith="org-").order_by("-slug")
    page = key_page(queryset, 5, 2)
    assert [o.slug for o in page.object_list] == [f"org-{i:02d}" for i in range(6, 1, -1)]
    assert isinstance(page.object_list[0], Organization)
    assert (page.number, page.paginator.count, page.paginator.num_pages) == (2, 12, 3)
    assert page.has_next() and page.has_previous() and (page.start_index(), page.end_index()) == (6, 10)


@pytest.mark.parametrize(("number", "expected"), [("x", 1), (None, 1), ("0", 3), ("99", 3), ("-1", 3)])
def test_a_bad_page_number_gives_the_first_or_last_page(orgs, number, expected):
    page = key_page(Organization.objects.filter(slug__startswith="org-").order_by("slug"), 5, number)
    assert page.number == expected


def test_a_page_costs_three_queries_whatever_the_size(orgs, django_assert_num_queries):
    queryset = Organization.objects.filter(slug__startswith="org-").order_by("slug")
    with django_assert_num_queries(3):  # count, the page's keys, its rows
        page = key_page(queryset, 5, 3)
    assert [o.slug for o in page.object_list] == ["org-10", "org-11"]


def test_an_empty_list_is_one_empty_page(db):
    page = key_page(Organization.objects.none(), 5, 1)
    assert page.object_list == [] and page.paginator.count == 0
