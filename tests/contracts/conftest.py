"""A PostgreSQL cluster of the fault and backup tests' own, migrated and seeded with the demo data
once per session: restarted and restored at will, never the shared server."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import PG_BIN, PostgresCluster, manage


@dataclass
class SeededCluster:
    pg: PostgresCluster
    var_dir: Path
    api_keys: dict[str, str]

    def env(self, database: str = "portal", **extra: str) -> dict[str, str]:
        """The environment of a production-like deployment on this cluster (eager tasks, no broker)."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in {
                "REDIS_URL",
                "CELERY_BROKER_URL",
                "DATABASE_URL",
                "TEST_DB_NAME",
                "DJANGO_SETTINGS_MODULE",
            }
        }
        env.update(
            DATABASE_URL=self.pg.url(database),
            VAR_DIR=str(self.var_dir),
            CELERY_TASK_ALWAYS_EAGER="true",
            EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
            LOG_LEVEL="WARNING",
            DEBUG="0",
        )
        env.update(extra)
        return env


@pytest.fixture(scope="session")
def seeded_cluster():
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL server binaries are needed in {PG_BIN} (apt-get install postgresql-15)")
    pg = PostgresCluster()
    var_dir = Path(tempfile.mkdtemp(prefix="vcp-var-"))
    try:
        pg.init()
        pg.start()
        pg.sql("CREATE DATABASE portal")
        cluster = SeededCluster(pg=pg, var_dir=var_dir, api_keys={})
        manage("migrate", "-v0", env=cluster.env())
        out = manage("seed_demo", env=cluster.env()).stdout
        cluster.api_keys = dict(
            (org, key) for key, org in re.findall(r"^api-key: (\S+) org=(\S+)$", out, re.MULTILINE)
        )
        yield cluster
    finally:
        pg.destroy()
        shutil.rmtree(var_dir, ignore_errors=True)
