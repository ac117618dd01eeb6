"""Property tests: any single-field change, deletion, insertion or reordering of ledger records is
detected, both by `verify_chain` on record bodies (what exports carry) and on database rows."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from contracts.ledger.chain import GENESIS_HASH, HASHED_FIELDS, compute_hash, ledger_append
from contracts.ledger.verify import ledger_verify, verify_chain
from contracts.models import LedgerAction

TEXT = st.text(max_size=12)
JSON_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), TEXT, st.dictionaries(TEXT, st.integers(), max_size=2)
)

BODY = st.fixed_dictionaries(
    {
        "organization": st.sampled_from(["acme", "globex"]),
        "action": st.sampled_from(LedgerAction.values),
        "actor_email": TEXT,
        "migration_id": st.none() | st.integers(1, 10**6),
        "from_snapshot": TEXT,
        "to_snapshot": TEXT,
        "terms_version": TEXT,
        "terms_sha256": st.text("0123456789abcdef", min_size=64, max_size=64),
        "diff_sha256": st.text("0123456789abcdef", max_size=64),
        "details": st.dictionaries(TEXT, st.integers() | TEXT, max_size=3),
        "ip": st.none() | st.ip_addresses().map(str),
        "user_agent": TEXT,
        "created_at": st.datetimes().map(lambda d: d.isoformat() + "Z"),
    }
)


def build_chain(bodies: list[dict]) -> list[tuple[dict, str, str]]:
    chain, prev = [], GENESIS_HASH
    for seq, body in enumerate(bodies, start=1):
        body = {**body, "seq": seq}
        own = compute_hash(body, prev)
        chain.append((body, prev, own))
        prev = own
    return chain


def head(chain) -> tuple[int, str]:
    return (len(chain), chain[-1][2]) if chain else (0, GENESIS_HASH)


CHAINS = st.lists(BODY, min_size=1, max_size=8).map(build_chain)


FAST = settings(max_examples=30, deadline=None)


@FAST
@given(chain=CHAINS)
def test_an_untouched_chain_verifies(chain):
    result = verify_chain(chain, expected_head=head(chain))
    assert result.intact and result.head_seq == len(chain) and result.head_hash == chain[-1][2]


@FAST
@given(chain=CHAINS, data=st.data())
def test_any_single_field_change_is_detected(chain, data):
    index = data.draw(st.integers(0, len(chain) - 1))
    field = data.draw(st.sampled_from([*HASHED_FIELDS, "prev_hash", "hash"]))
    body, prev, own = copy.deepcopy(chain[index])
    if field == "prev_hash":
        new = data.draw(st.text("0123456789abcdef", min_size=64, max_size=64))
        assume(new != prev)
        prev = new
    elif field == "hash":
        new = data.draw(st.text("0123456789abcdef", min_size=64, max_size=64))
        assume(new != own)
        own = new
    else:
        new = data.draw(JSON_VALUE)
        assume(new != body[field] or type(new) is not type(body[field]))
        body[field] = new
    tampered = [*chain[:index], (body, prev, own), *chain[index + 1 :]]
    result = verify_chain(tampered, expected_head=head(chain))
    assert not result.intact
    assert result.broken_seq is not None and result.broken_seq <= index + 2
    assert result.head_seq < result.broken_seq


@FAST
@given(chain=CHAINS, data=st.data())
def test_any_deletion_is_detected(chain, data):
    index = data.draw(st.integers(0, len(chain) - 1))
    tampered = chain[:index] + chain[index + 1 :]
    assert not verify_chain(tampered, expected_head=head(chain)).intact


@FAST
@given(chain=CHAINS, data=st.data(), forged=BODY)
def test_any_insertion_is_detected_even_with_a_correctly_linked_forgery(chain, data, forged):
    index = data.draw(st.integers(0, len(chain)))
    prev = chain[index - 1][2] if index else GENESIS_HASH
    body = {**forged, "seq": index + 1}
    tampered = [*chain[:index], (body, prev, compute_hash(body, prev)), *chain[index:]]
    assert not verify_chain(tampered, expected_head=head(chain)).intact


@FAST
@given(chain=CHAINS.filter(lambda c: len(c) >= 2), data=st.data())
def test_any_reordering_is_detected(chain, data):
    order = data.draw(st.permutations(range(len(chain))))
    assume(list(order) != list(range(len(chain))))
    tampered = [chain[i] for i in order]
    assert not verify_chain(tampered, expected_head=head(chain)).intact


# --- the database path --------------------------------------------------------------------------

DB_FIELDS = {
    # column: (SQL expression, params) giving a value different from what ledger_append wrote below
    "actor_email": ("%s", ["forged@x.example"]),
    "action": ("%s", ["decline"]),
    "from_snapshot": ("%s", ["chat-forged"]),
    "to_snapshot": ("%s", ["chat-forged"]),
    "terms_version": ("%s", ["9999-99"]),
    "terms_sha256": ("%s", ["f" * 64]),
    "diff_sha256": ("%s", ["e" * 64]),
    "details": ("%s", ['{"forged": true}']),
    "ip": ("%s", ["203.0.113.99"]),
    "user_agent": ("%s", ["curl/0.0"]),
    "created_at": ("%s", [dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC)]),
    "seq": ("seq + 100", []),
    "prev_hash": ("%s", ["d" * 64]),
    "hash": ("%s", ["c" * 64]),
}


class Rollback(Exception):
    pass


def tamper(*statements: tuple[str, list]) -> object:
    """Run raw SQL with triggers off (PostgreSQL), verify, and undo everything."""
    result = None
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL session_replication_role = replica")
            for sql, params in statements:
                cursor.execute(sql, params)
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL session_replication_role = DEFAULT")
            result = ledger_verify_current()
            raise Rollback
    except Rollback:
        return result


_ORG = {}


def ledger_verify_current():
    return ledger_verify(org=_ORG["org"])


@pytest.fixture
def chain_in_db(world):
    records = [
        ledger_append(
            org=world.org,
            action=LedgerAction.CONSENT,
            actor_email=f"admin{i}@acme.example",
            from_snapshot="chat-a",
            to_snapshot="chat-b",
            terms_version="2025-09",
            terms_sha256="a" * 64,
            details={"i": i},
            ip="192.0.2.1",
            user_agent="ua",
        )
        for i in range(5)
    ]
    _ORG["org"] = world.org
    return records


@pytest.mark.django_db
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, 4), column=st.sampled_from(sorted(DB_FIELDS)))
def test_any_single_column_change_in_the_database_is_detected(chain_in_db, index, column):
    expression, params = DB_FIELDS[column]
    result = tamper(
        (
            f"UPDATE contracts_consentrecord SET {column} = {expression} WHERE id = %s",
            [*params, chain_in_db[index].pk],
        )
    )
    assert not result.intact
    assert ledger_verify_current().intact  # the tampering was rolled back


@pytest.mark.django_db
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, 4))
def test_any_row_deletion_in_the_database_is_detected(chain_in_db, index):
    result = tamper(("DELETE FROM contracts_consentrecord WHERE id = %s", [chain_in_db[index].pk]))
    assert not result.intact
    assert result.broken_seq == index + 1


@pytest.mark.django_db
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(0, 4), b=st.integers(0, 4))
def test_swapping_two_rows_in_the_database_is_detected(chain_in_db, a, b):
    assume(a != b)
    first, second = chain_in_db[a], chain_in_db[b]
    # Swap the sequence numbers through a free one ((organization, seq) is unique).
    update = "UPDATE contracts_consentrecord SET seq = %s WHERE id = %s"
    result = tamper(
        (update, [10**6, first.pk]), (update, [first.seq, second.pk]), (update, [second.seq, first.pk])
    )
    assert not result.intact
