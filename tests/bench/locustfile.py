"""The mixed load of tests/bench/test_load.py: customer admins browsing pages, API clients listing
and deciding migrations, resolve traffic, consent exports. Run by that test with locust headless;
every setting comes from the environment it sets:

  LOAD_LOGINS     "username password org" per line (admins to sign in as)
  LOAD_KEYS       "key org" per line (API keys)
  LOAD_DECISIONS  "migration_id key" per line: open migrations to decide, each exactly once
  LOAD_DECIDED    a file: each successful decision appends "migration_id seq" (checked afterwards)
  LOAD_ONLY       "healthz" for the anchor run (only the plain Django view)
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

from locust import HttpUser, between, task


def _lines(name: str) -> list[list[str]]:
    path = os.environ.get(name)
    return [line.split() for line in Path(path).read_text().splitlines() if line.strip()] if path else []


LOGINS = _lines("LOAD_LOGINS")
KEYS = _lines("LOAD_KEYS")
DECISIONS = _lines("LOAD_DECISIONS")
random.shuffle(DECISIONS)
DECIDED = os.environ.get("LOAD_DECIDED", "")
ONLY = os.environ.get("LOAD_ONLY", "")
NEXT = re.compile(r'<([^>]+)>; rel="next"')


class Anchor(HttpUser):
    """The plain Django view: the anchor of every page and endpoint figure."""

    weight = 1 if ONLY == "healthz" else 0
    wait_time = between(0, 0)

    @task
    def healthz(self):
        self.client.get("/healthz", name="anchor: /healthz")


class Admin(HttpUser):
    """A customer admin in the browser: dashboard (filtered, paged), migrations, consents, changelog."""

    weight = 0 if ONLY else 3
    wait_time = between(0.5, 2)

    def on_start(self):
        username, password, self.org = random.choice(LOGINS)
        page = self.client.get("/accounts/login/", name="login page")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        with self.client.post(
            "/accounts/login/",
            {"username": username, "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": self.client.base_url + "/accounts/login/"},
            name="login",
            catch_response=True,
        ) as response:
            if "/accounts/login/" in response.url:  # the form again: not signed in
                response.failure(f"login of {username} refused")

    def get(self, path, name):
        with self.client.get(path, name=name, catch_response=True) as response:
            if "/accounts/login/" in response.url:
                response.failure("redirected to the login page")

    @task(4)
    def dashboard(self):
        self.get(f"/o/{self.org}/", "page: dashboard")

    @task(2)
    def dashboard_filtered(self):
        self.get(f"/o/{self.org}/?status=deprecated&page=2", "page: dashboard filtered, page 2")

    @task(2)
    def migrations(self):
        self.get(f"/o/{self.org}/migrations/", "page: migrations")

    @task(1)
    def consents(self):
        self.get(f"/o/{self.org}/consents/", "page: consents")

    @task(1)
    def changelog(self):
        self.get(f"/o/{self.org}/changelog/", "page: changelog")


class ApiClient(HttpUser):
    """A customer system: lists pins and migrations page by page, decides open migrations."""

    weight = 0 if ONLY else 3
    wait_time = between(0.2, 1)

    def on_start(self):
        self.key = random.choice(KEYS)[0]
        self.headers = {"Authorization": f"Bearer {self.key}"}

    def _pages(self, url, name, pages=3):
        for _ in range(pages):
            response = self.client.get(url, headers=self.headers, name=name)
            match = NEXT.search(response.headers.get("Link", ""))
            if not match:
                return
            url = match.group(1)

    @task(3)
    def pins(self):
        self._pages("/api/v1/pins/?limit=100", "api: GET pins/ (pages)")

    @task(3)
    def migrations(self):
        self._pages("/api/v1/migrations/?state=proposed&limit=50", "api: GET migrations/ (pages)")

    @task(1)
    def consents(self):
        self._pages("/api/v1/consents/?limit=100", "api: GET consents/ (pages)")

    @task(2)
    def decide(self):
        if not DECISIONS:
            return
        migration_id, key = DECISIONS.pop()
        with self.client.post(
            f"/api/v1/migrations/{migration_id}/consent/",
            json={},
            headers={"Authorization": f"Bearer {key}"},
            name="api: POST migrations/[id]/consent/",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                seq = response.json()["record"]["seq"]
                with open(DECIDED, "a") as out:
                    out.write(f"{migration_id} {seq}\n")
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")


class Resolver(HttpUser):
    """A serving layer resolving its aliases on every request."""

    weight = 0 if ONLY else 4
    wait_time = between(0, 0.05)

    def on_start(self):
        self.headers = {"Authorization": f"Bearer {random.choice(KEYS)[0]}"}

    @task
    def resolve(self):
        self.client.get("/api/v1/resolve/v1-chat/", headers=self.headers, name="api: GET resolve/v1-chat/")


class Exporter(HttpUser):
    """Customer legal downloading the consent history as CSV (streamed)."""

    weight = 0 if ONLY else 1
    wait_time = between(5, 10)

    def on_start(self):
        self.headers = {"Authorization": f"Bearer {random.choice(KEYS)[0]}"}

    @task
    def export(self):
        self.client.get(
            "/api/v1/consents/export/?format=csv", headers=self.headers, name="api: GET consents/export/ csv"
        )
