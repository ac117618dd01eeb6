"""The public commands of renewal: create_eval_runner, and the demo runner's key printed by seed_demo."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from contracts.models import EvalRunner
from contracts.renewal.runner import deterministic_score, scores_for

pytestmark = pytest.mark.django_db
RUNNER_KEY = re.compile(r"^runner-key: (vcr_\S+) name=(\S+)$")


def run(*args) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def test_create_eval_runner_prints_a_key_that_claims(client):
    (line,) = run("create_eval_runner", "--name", "ci-runner")
    key, name = RUNNER_KEY.match(line).groups()
    assert name == "ci-runner" and EvalRunner.objects.get(name=name).key_hash == EvalRunner.hash_key(key)
    assert client.get("/api/v1/eval-runs/claim/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 204


def test_a_runner_name_is_taken_once(client):
    run("create_eval_runner", "--name", "ci-runner")
    with pytest.raises(CommandError, match="exists"):
        run("create_eval_runner", "--name", "ci-runner")
    assert EvalRunner.objects.count() == 1


def test_seed_demo_prints_the_demo_runners_key_every_run(client):
    first = [line for line in run("seed_demo") if RUNNER_KEY.match(line)]
    second = [line for line in run("seed_demo") if RUNNER_KEY.match(line)]
    assert first == second and len(second) == 1
    key = RUNNER_KEY.match(second[0]).group(1)
    assert client.get("/api/v1/eval-runs/claim/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 204


def test_the_demo_runners_scores_are_fixed_by_snapshot_and_differ_between_snapshots():
    claim = {
        "suite": "mmlu-lite", "snapshot": "chat-2025-09-29", "snapshot_digest": "ab" * 32,
        "metrics": ["accuracy", "false_refusal"], "lower_is_better": ["false_refusal"],
        "subsets": {"accuracy": ["stem", "humanities"], "false_refusal": []},
    }  # fmt: skip
    assert scores_for(claim) == scores_for(dict(claim))
    assert scores_for(claim) != scores_for({**claim, "snapshot": "chat-2025-06-01"})
    assert 0.55 <= scores_for(claim)["accuracy"]["score"] < 0.95
    assert 0.02 <= scores_for(claim)["false_refusal"]["score"] < 0.15
    assert set(scores_for(claim)["accuracy"]["subsets"]) == {"stem", "humanities"}
    assert deterministic_score(
        snapshot="a", digest="", suite="s", metric="m", lower_is_better=False
    ) == deterministic_score(snapshot="a", digest="", suite="s", metric="m", lower_is_better=False)


def test_with_a_published_score_the_demo_rerun_lands_within_a_hundredth_of_it():
    claim = {
        "suite": "acme-clinical-qa", "snapshot": "chat-2025-09-29", "snapshot_digest": "cd" * 32,
        "metrics": ["accuracy", "citation_rate"], "lower_is_better": [], "subsets": {},
        "reference_scores": {"accuracy": 0.779, "citation_rate": 0.742},
    }  # fmt: skip
    scores = scores_for(claim)
    assert (
        abs(scores["accuracy"]["score"] - 0.779) <= 0.01
        and abs(scores["citation_rate"]["score"] - 0.742) <= 0.01
    )
    assert scores == scores_for(claim)
