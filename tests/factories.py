"""factory_boy factories for the domain. Catalog factories create published snapshots by default."""

from __future__ import annotations

import datetime as dt
import hashlib

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from contracts import models
from contracts.catalog import services as catalog_services
from contracts.gateway import services as gateway_services
from contracts.pins import services as pins_services
from contracts.tenancy import services as tenancy_services


def days(n: int) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=n)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class FamilyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ModelFamily
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"fam{n}")
    name = factory.LazyAttribute(lambda f: f.slug.title())
    owning_team = factory.LazyAttribute(lambda f: f"{f.name} Team")
    owning_team_email = factory.LazyAttribute(lambda f: f"{f.slug}-team@vendor.example")


class SnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Snapshot

    family = factory.SubFactory(FamilyFactory)
    name = factory.Sequence(lambda n: f"snap-{n:04d}")
    digest = factory.LazyAttribute(lambda s: hashlib.sha256(s.name.encode()).hexdigest())
    config = factory.LazyFunction(lambda: {"context_window": 8192, "tokenizer": "tok-v1"})
    released_at = factory.LazyFunction(lambda: days(-30))
    published_at = factory.LazyFunction(lambda: days(-31))


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org{n}")
    name = factory.LazyAttribute(lambda o: f"{o.slug.title()} Ltd")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = models.Role.ADMIN


def make_alias(*, name: str, target: models.Snapshot, at: dt.datetime | None = None) -> models.Alias:
    return catalog_services.alias_create(name=name, family=target.family, target=target, at=at or days(-60))


def make_pin(
    *,
    org: models.Organization,
    alias: models.Alias,
    snapshot: models.Snapshot | None = None,
    policy: str = models.UpgradePolicy.MANUAL,
    at: dt.datetime | None = None,
) -> models.Pin:
    return pins_services.pin_set(
        org=org, alias=alias, snapshot=snapshot or alias.target, policy=policy, at=at or days(-50)
    )


def make_key(org: models.Organization, name: str = "test key") -> str:
    _key, raw = tenancy_services.api_key_create(org=org, name=name)
    return raw


def make_gateway(name: str = "edge-1") -> tuple[models.Gateway, str]:
    return gateway_services.gateway_create(name=name)


def record_usage(
    *,
    org: models.Organization,
    alias: models.Alias,
    snapshot: models.Snapshot,
    hour: dt.datetime,
    requests: int,
) -> None:
    """Add one hourly count as a gateway would report it (through the ingestion service)."""
    gateway = (
        models.Gateway.objects.filter(name="usage-recorder").first() or make_gateway("usage-recorder")[0]
    )
    start = hour.replace(minute=0, second=0, microsecond=0)
    gateway_services.usage_ingest(
        gateway=gateway,
        batch_id=hashlib.sha256(
            f"{org.pk}:{alias.pk}:{snapshot.pk}:{start.isoformat()}:{requests}:{timezone.now().timestamp()}".encode()
        ).hexdigest()[:32],
        rows=[
            {
                "org": org.slug,
                "alias": alias.name,
                "snapshot": snapshot.name,
                "hour": start.isoformat(),
                "requests": requests,
            }
        ],
    )
