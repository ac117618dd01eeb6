"""Pages of a list that stay as cheap at 5,000 rows as at 5.

A page of a queryset with joins (`select_related`) and correlated annotations makes the database
join and compute every row before it sorts and cuts 25 of them. `key_page` asks first for the
primary keys of the page alone (a narrow sort, usually on one table), then reads those 25 rows
with everything the page shows: the same two queries whatever the size of the list.
"""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet


def key_page(queryset: QuerySet, per_page: int, number: object) -> Page:
    """The page `number` of `queryset` (its own ordering); a bad or out-of-range number gives
    the first or last page, as Paginator.get_page does. `page.object_list` is a list of models."""
    page = Paginator(queryset.values_list("pk", flat=True), per_page).get_page(number)
    keys = list(page.object_list)
    rows = {row.pk: row for row in queryset.filter(pk__in=keys).order_by()}
    page.object_list = [rows[key] for key in keys if key in rows]
    return page
