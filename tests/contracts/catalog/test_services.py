from __future__ import annotations

import pytest

from contracts.catalog import services as catalog_services
from contracts.errors import ApplicationError, Conflict
from contracts.models import AliasMove, AppendOnlyError, PinChange, Snapshot, UpgradePolicy
from contracts.pins import services as pins_services
from contracts.tenancy import services as tenancy_services
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_published_snapshot_refuses_digest_and_config_changes(world):
    with pytest.raises(Conflict) as exc:
        catalog_services.snapshot_update(snapshot=world.old, data={"digest": "a" * 64})
    assert "digest" in exc.value.fields
    with pytest.raises(Conflict):
        catalog_services.snapshot_update(snapshot=world.old, data={"config": {"context_window": 1}})
    world.old.refresh_from_db()
    assert world.old.config == {"context_window": 8192, "tokenizer": "tok-v1"}


def test_draft_snapshot_can_change_until_published(world):
    draft = catalog_services.snapshot_create(
        family=world.family, name="chat-draft", digest="b" * 64, released_at=f.days(10)
    )
    catalog_services.snapshot_update(snapshot=draft, data={"config": {"context_window": 4096}})
    catalog_services.snapshot_publish(snapshot=draft)
    with pytest.raises(Conflict):
        catalog_services.snapshot_update(snapshot=draft, data={"config": {"context_window": 1}})
    # Mutable facts may still change.
    catalog_services.snapshot_update(snapshot=draft, data={"latency_p50_ms": 300})
    assert Snapshot.objects.get(pk=draft.pk).latency_p50_ms == 300


def test_bad_digest_is_refused_naming_the_field(world):
    with pytest.raises(ApplicationError) as exc:
        catalog_services.snapshot_create(
            family=world.family, name="x", digest="nothex", released_at=f.days(0)
        )
    assert "digest" in exc.value.fields
    assert not Snapshot.objects.filter(name="x").exists()


def test_alias_move_records_history_and_moves_only_follow_pins(world):
    newest = f.SnapshotFactory(family=world.family, name="chat-new", released_at=f.days(-1))
    follower = world.other_org.pins.get()
    manual_before = world.pin.snapshot_id
    changes_before = PinChange.objects.count()
    move = catalog_services.alias_move(alias=world.alias, to_snapshot=newest, reason="quality")
    assert move.from_snapshot == world.current and move.to_snapshot == newest
    follower.refresh_from_db()
    world.pin.refresh_from_db()
    assert follower.snapshot == newest
    assert world.pin.snapshot_id == manual_before
    assert PinChange.objects.count() == changes_before + 1
    change = PinChange.objects.latest("id")
    assert change.pin == follower and change.to_snapshot == newest and "alias" in change.reason


def test_alias_move_to_other_family_is_refused_and_writes_nothing(world):
    stranger = f.SnapshotFactory(family=f.FamilyFactory(slug="embed"), name="embed-1")
    moves = AliasMove.objects.count()
    with pytest.raises(ApplicationError) as exc:
        catalog_services.alias_move(alias=world.alias, to_snapshot=stranger, reason="oops")
    assert "to_snapshot" in exc.value.fields
    assert AliasMove.objects.count() == moves


def test_pin_policy_change_is_recorded_with_actor(world):
    pins_services.pin_policy_change(
        pin=world.pin, policy=UpgradePolicy.ON_RETIREMENT, acting_user=world.admin
    )
    change = PinChange.objects.filter(pin=world.pin).latest("id")
    assert (change.from_policy, change.to_policy, change.actor) == ("manual", "on-retirement", world.admin)


def test_unknown_policy_is_refused(world):
    with pytest.raises(ApplicationError) as exc:
        pins_services.pin_policy_change(pin=world.pin, policy="sometimes")
    assert "policy" in exc.value.fields


def test_histories_are_append_only_in_the_models(world):
    move = AliasMove.objects.first()
    move.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        move.save()
    with pytest.raises(AppendOnlyError):
        move.delete()
    with pytest.raises(AppendOnlyError):
        PinChange.objects.all().update(reason="x")
    with pytest.raises(AppendOnlyError):
        PinChange.objects.all().delete()


def test_api_key_is_stored_hashed_with_visible_prefix(world):
    from contracts.models import ApiKey

    key, raw = tenancy_services.api_key_create(org=world.org, name="ci")
    assert raw.startswith("vcp_") and key.prefix == raw[:12]
    assert raw not in (key.key_hash, key.prefix)
    assert ApiKey.objects.get(pk=key.pk).key_hash == ApiKey.hash_key(raw)
