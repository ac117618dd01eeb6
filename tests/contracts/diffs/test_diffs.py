"""Diff computation (pure functions) and the diff document built from the database."""

from __future__ import annotations

import pytest

from contracts.diffs import compute
from contracts.diffs.selectors import content_sha256, diff_build
from contracts.errors import ApplicationError, NotFound
from contracts.models import ChangelogEntry, ChangelogKind
from tests import factories as f
from tests.contracts.diff_support import big_diff_data, make_result, make_samples, make_suite


def test_config_diff_walks_nested_objects_key_by_key():
    before = {
        "context_window": 8192,
        "sampling": {"temperature": 0.7, "top_p": 0.95},
        "old": 1,
        "stop": ["a"],
    }
    after = {"context_window": 16384, "sampling": {"temperature": 0.7, "top_k": 40}, "stop": ["a", "b"]}
    changes = {c["path"]: (c["change"], c["before"], c["after"]) for c in compute.config_diff(before, after)}
    assert changes == {
        "context_window": ("changed", 8192, 16384),
        "old": ("removed", 1, None),
        "sampling.top_k": ("added", None, 40),
        "sampling.top_p": ("removed", 0.95, None),
        "stop": ("changed", ["a"], ["a", "b"]),
    }


def test_a_drop_beyond_the_tolerance_is_a_regression_and_a_drop_within_it_is_not():
    spec = compute.SuiteSpec(slug="s", name="S", owner="public", tolerances={"acc": 0.05, "f1": 0.05})
    rows = compute.metric_deltas(
        spec,
        {"acc": {"score": 0.85, "subsets": {"hard": 0.7}}, "f1": {"score": 0.9}},
        {"acc": {"score": 0.80, "subsets": {"hard": 0.6}}, "f1": {"score": 0.84}},
    )
    acc, f1 = rows
    assert (acc["delta"], acc["status"], acc["regression"]) == (-0.05, "worse", False)
    assert acc["subsets"][0]["regression"] is True and acc["subsets"][0]["delta"] == -0.1
    assert (f1["status"], f1["regression"]) == ("regression", True)


def test_lower_is_better_metrics_count_a_rise_as_the_regression():
    spec = compute.SuiteSpec(
        slug="s", name="S", owner="public", tolerances={"latency": 10}, lower_is_better=["latency"]
    )
    up = compute.metric_deltas(spec, {"latency": {"score": 100}}, {"latency": {"score": 120}})[0]
    down = compute.metric_deltas(spec, {"latency": {"score": 120}}, {"latency": {"score": 100}})[0]
    assert (up["status"], up["regression"]) == ("regression", True)
    assert (down["status"], down["regression"]) == ("better", False)


def test_a_metric_on_one_side_only_is_missing_not_a_regression():
    spec = compute.SuiteSpec(slug="s", name="S", owner="public")
    row = compute.metric_deltas(spec, {"acc": {"score": 0.5}}, {})[0]
    assert (row["after"], row["delta"], row["status"], row["regression"]) == (None, None, "missing", False)


def test_word_diff_marks_changed_words_and_rebuilds_both_texts():
    ops = compute.word_diff("the quick brown fox", "the slow brown fox jumps")
    assert {"op": "delete", "text": "quick "} in ops and {"op": "insert", "text": "slow "} in ops
    assert {"op": "insert", "text": " jumps"} in ops
    assert "".join(o["text"] for o in ops if o["op"] != "insert") == "the quick brown fox"
    assert "".join(o["text"] for o in ops if o["op"] != "delete") == "the slow brown fox jumps"


def test_figures_show_price_context_and_latency_changes_where_known():
    rows = compute.figure_diff(
        {"price_input_per_mtok": 0.6, "context_window": 128000, "latency_p50_ms": None},
        {"price_input_per_mtok": 0.5, "context_window": 200000, "latency_p50_ms": 430},
    )
    by_field = {r["field"]: r for r in rows}
    assert by_field["price_input_per_mtok"]["delta"] == -0.1
    assert by_field["context_window"]["delta"] == 72000
    assert by_field["latency_p50_ms"]["delta"] is None and by_field["latency_p50_ms"]["changed"] is True
    assert "price_output_per_mtok" not in by_field


@pytest.fixture
def chat(world):
    """Three snapshots of world's family with changelog entries, evals and golden samples."""
    newest = f.SnapshotFactory(
        family=world.family,
        name="chat-2025-09-29",
        released_at=f.days(-10),
        config={"context_window": 16384, "tokenizer": "tok-v2", "sampling": {"temperature": 0.5}},
        price_input_per_mtok="0.50",
        latency_p50_ms=400,
    )
    for snap, title in ((world.current, "Refusal policy v3"), (newest, "Price cut"), (world.old, "Ancient")):
        ChangelogEntry.objects.create(snapshot=snap, kind=ChangelogKind.COST, title=title)
    public = make_suite("public-qa", tolerances={"accuracy": 0.02})
    own = make_suite("acme-private", owner=world.org, tolerances={"accuracy": 0.02})
    foreign = make_suite("globex-secret", owner=world.other_org, tolerances={"accuracy": 0.02})
    for suite in (public, own, foreign):
        make_result(suite, world.current, accuracy=(0.80, {"hard": 0.6}))
        make_result(suite, newest, accuracy=(0.75, {"hard": 0.61}))
    make_samples(world.current, {"p1": "Hello there friend", "p2": "same"})
    make_samples(newest, {"p1": "Hello there dear friend", "p2": "same", "p3": "new"})
    return newest


def test_diff_lists_changelog_entries_released_between_the_two_snapshots(world, chat):
    document = diff_build(org=world.org, a=world.old.name, b=chat.name)
    assert [e["title"] for e in document["changelog"]] == ["Refusal policy v3", "Price cut"]
    assert document["direction"] == "forward"
    backward = diff_build(org=world.org, a=chat.name, b=world.current.name)
    assert [e["title"] for e in backward["changelog"]] == ["Price cut"]
    assert backward["direction"] == "backward"


def test_diff_flags_the_regression_and_pairs_golden_samples(world, chat):
    document = diff_build(org=world.org, a=world.current.name, b=chat.name)
    suites = {s["suite"]: s for s in document["evals"]}
    accuracy = suites["public-qa"]["metrics"][0]
    assert accuracy["delta"] == -0.05 and accuracy["regression"] is True
    assert document["summary"]["regressions"] == 2  # public and own suite
    samples = {g["prompt_id"]: g for g in document["golden_samples"]}
    assert samples["p1"]["changed"] and {"op": "insert", "text": "dear "} in samples["p1"]["diff"]
    assert samples["p2"]["changed"] is False and samples["p2"]["diff"] == []
    assert samples["p3"]["before"] is None and samples["p3"]["after"] == "new"
    figures = {r["field"]: r for r in document["figures"]}
    assert figures["context_window"]["before"] == 8192 and figures["context_window"]["after"] == 16384


def test_suites_of_another_organisation_never_appear_in_a_diff(world, chat):
    mine = diff_build(org=world.org, a=world.current.name, b=chat.name)
    theirs = diff_build(org=world.other_org, a=world.current.name, b=chat.name)
    assert {s["suite"] for s in mine["evals"]} == {"public-qa", "acme-private"}
    assert {s["suite"] for s in theirs["evals"]} == {"public-qa", "globex-secret"}
    assert "acme-private" not in str(theirs) and "globex-secret" not in str(mine)


def test_snapshots_of_different_families_are_refused_saying_so(world):
    other = f.SnapshotFactory(name="embed-2025-01-01")
    with pytest.raises(ApplicationError) as refused:
        diff_build(org=world.org, a=world.old.name, b=other.name)
    assert refused.value.status_code == 400
    assert "different families" in refused.value.message and "b" in refused.value.fields


def test_an_unknown_snapshot_is_not_found(world):
    with pytest.raises(NotFound):
        diff_build(org=world.org, a=world.old.name, b="chat-1999-01-01")


def test_content_hash_ignores_generation_time(world, chat):
    first = diff_build(org=world.org, a=world.current.name, b=chat.name, at=f.days(-1))
    second = diff_build(org=world.org, a=world.current.name, b=chat.name, at=f.days(0))
    assert first["generated_at"] != second["generated_at"]
    assert first["content_sha256"] == second["content_sha256"] == content_sha256(second)


def test_a_large_diff_takes_a_fixed_small_number_of_queries(world, django_assert_max_num_queries):
    big_diff_data(world.old, world.current, suites=12, metrics=5, subsets=3, samples=20)
    with django_assert_max_num_queries(5):
        document = diff_build(org=world.org, a=world.old.name, b=world.current.name)
    assert document["summary"]["suites"] == 12 and document["summary"]["golden_samples"] == 20
