"""Cursor (keyset) pagination shared by every list endpoint of the API.

A page is the rows after the last row of the previous page in the list's total order (its ordering
always ends with the primary key), so rows inserted while a client pages never shift what it has
still to read: nothing is skipped, nothing repeated. The cursor is signed and bound to its list
(endpoint, organisation and filters), so a malformed, tampered or foreign cursor is refused with a
400 that names `cursor`. Page sizes are bounded the same everywhere: `limit` from 1 to
MAX_PAGE_SIZE (default DEFAULT_PAGE_SIZE); a larger one is refused with a 400 naming `limit`.
The next page's URL travels in a `Link: <…>; rel="next"` header (RFC 8288), so list bodies keep
their shape; there is no `next` link on the last page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.core import signing
from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.response import Response

from contracts.errors import ApplicationError

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
_SALT = "contracts.pagination.cursor"


class PageSerializer(serializers.Serializer):
    """The query parameters of every paginated list (mixed into each list's filter serializer)."""

    cursor = serializers.CharField(
        required=False, max_length=2000, help_text='Opaque; from the `Link: rel="next"` header.'
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_PAGE_SIZE,
        default=DEFAULT_PAGE_SIZE,
        help_text=f"Rows per page, 1 to {MAX_PAGE_SIZE}.",
    )


LINK_HEADER = OpenApiParameter(
    "Link",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200],
    description='`<url>; rel="next"` while more rows follow (RFC 8288); absent on the last page.',
)


@dataclass
class Page:
    rows: list[Any]
    next_cursor: str | None

    def next_url(self, request) -> str | None:
        """This list's URL with the same filters and limit, at the next page; None on the last."""
        if self.next_cursor is None:
            return None
        query = {k: v for k, v in request.GET.items() if k != "cursor"}
        query["cursor"] = self.next_cursor
        return request.build_absolute_uri(request.path) + "?" + urlencode(query)


def _value(row: Any, path: str) -> Any:
    for part in path.split("__"):
        row = getattr(row, part)
    if isinstance(row, dt.datetime):
        return row.isoformat()
    return row


def _after(order: tuple[str, ...], values: list[Any]) -> Q:
    """Rows strictly after `values` in `order` (each field ascending, or descending with '-')."""
    condition = Q()
    for i, field in enumerate(order):
        name = field.lstrip("-")
        step = Q(**{f"{name}__{'lt' if field.startswith('-') else 'gt'}": values[i]})
        for earlier, value in zip(order[:i], values[:i], strict=True):
            step &= Q(**{earlier.lstrip("-"): value})
        condition |= step
    return condition


def paginate(
    queryset: QuerySet, *, order: tuple[str, ...], scope: str, cursor: str | None, limit: int
) -> Page:
    """One page of `queryset` in `order` (non-null fields ending with a unique one). `scope` names
    the list (endpoint, organisation, filters): a cursor of another scope is refused."""
    queryset = queryset.order_by(*order)
    if cursor:
        try:
            data = signing.loads(cursor, salt=_SALT)
            values, cursor_scope = data["k"], data["s"]
        except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
            raise ApplicationError(
                'The cursor is malformed or was altered; use the URL of a `Link: rel="next"` header.',
                fields={"cursor": "malformed"},
            ) from exc
        if cursor_scope != scope or not isinstance(values, list) or len(values) != len(order):
            raise ApplicationError(
                "This cursor belongs to another list (another endpoint, organisation or filter).",
                fields={"cursor": "belongs to another list"},
            )
        queryset = queryset.filter(_after(order, values))
    rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    last = [_value(rows[-1], field.lstrip("-")) for field in order]
    return Page(rows, signing.dumps({"k": last, "s": scope}, salt=_SALT, compress=True))


def page_params(serializer_class: type[serializers.Serializer], request) -> dict[str, Any]:
    """Validate a list's query parameters (its filters plus `cursor` and `limit`): 400 on bad input."""
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


def paged_response(
    request,
    queryset: QuerySet,
    *,
    name: str,
    org_id: int | None,
    params: dict[str, Any],
    order: tuple[str, ...],
    serializer_class: type[serializers.Serializer],
    body=None,
    context: dict[str, Any] | None = None,
    prepare=None,
):
    """The page of `queryset` that `params` asks for, serialized, with the next page's `Link`.
    `prepare(rows)` turns the page's rows into what `serializer_class` reads, in bulk (default: the
    rows themselves); `body(rows_data, next_url)` shapes the body (default: the list itself)."""
    filters = {k: v for k, v in sorted(params.items()) if k not in ("cursor", "limit")}
    scope = f"{name}:{org_id or ''}:{urlencode({k: str(v) for k, v in filters.items()})}"
    page = paginate(queryset, order=order, scope=scope, cursor=params.get("cursor"), limit=params["limit"])
    rows = page.rows if prepare is None else prepare(page.rows)
    data = serializer_class(rows, many=True, context=context or {}).data
    next_url = page.next_url(request)
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    return Response(data if body is None else body(data, next_url), headers=headers)
