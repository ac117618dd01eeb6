"""Properties of the diff computation: a snapshot compared with itself shows no change; swapping the
two snapshots negates every delta and turns additions into removals."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.diffs import compute

names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
scalars = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
)
configs = st.recursive(
    scalars, lambda inner: st.dictionaries(names, inner, max_size=4), max_leaves=12
).filter(lambda v: isinstance(v, dict)) | st.dictionaries(names, scalars, max_size=5)
score = st.floats(0, 1, allow_nan=False)
metric_scores = st.dictionaries(
    names,
    st.fixed_dictionaries({"score": score, "subsets": st.dictionaries(names, score, max_size=3)}),
    max_size=4,
)
specs = st.builds(
    compute.SuiteSpec,
    slug=names,
    name=st.just("Suite"),
    owner=st.just("public"),
    tolerances=st.dictionaries(names, st.floats(0, 0.2, allow_nan=False), max_size=4),
    lower_is_better=st.lists(names, max_size=2),
)
texts = st.lists(
    st.sampled_from(["the", "model", "answer", "is", "short", "\n", "  ", "42", "ok."]), max_size=25
).map(" ".join)
samples = st.dictionaries(names, st.tuples(st.just("prompt"), texts), max_size=5)
figures = st.fixed_dictionaries(
    {field: st.one_of(st.none(), st.integers(0, 300000)) for field, *_ in compute.FIGURES}
)


def full_diff(config_a, config_b, spec, scores_a, scores_b, samples_a, samples_b, fig_a, fig_b):
    config = compute.config_diff(config_a, config_b)
    evals = compute.eval_deltas([spec], {spec.slug: scores_a}, {spec.slug: scores_b})
    golden = compute.golden_pairs(samples_a, samples_b)
    figs = compute.figure_diff(fig_a, fig_b)
    summary = compute.summarise(config=config, figures=figs, changelog=[], evals=evals, golden_samples=golden)
    return config, evals, golden, figs, summary


@settings(max_examples=60, deadline=None)
@given(configs, specs, metric_scores, samples, figures)
def test_a_snapshot_diffed_with_itself_is_empty(config, spec, scores, sample_set, figure_set):
    config_rows, evals, golden, figs, summary = full_diff(
        config, config, spec, scores, scores, sample_set, sample_set, figure_set, figure_set
    )
    assert config_rows == []
    assert compute.is_empty(summary)
    assert all(m["delta"] in (0, None) for s in evals for m in s["metrics"])
    assert all(sub["delta"] == 0 for s in evals for m in s["metrics"] for sub in m["subsets"])
    assert not any(g["changed"] for g in golden)
    assert not any(f["changed"] for f in figs)


@settings(max_examples=60, deadline=None)
@given(configs, configs, specs, metric_scores, metric_scores, samples, samples, figures, figures)
def test_swapping_the_snapshots_negates_every_delta(ca, cb, spec, sa, sb, ga, gb, fa, fb):
    forward = full_diff(ca, cb, spec, sa, sb, ga, gb, fa, fb)
    backward = full_diff(cb, ca, spec, sb, sa, gb, ga, fb, fa)
    config_f, evals_f, golden_f, figs_f, summary_f = forward
    config_b, evals_b, golden_b, figs_b, summary_b = backward

    flip = {"added": "removed", "removed": "added", "changed": "changed"}
    assert [(c["path"], flip[c["change"]], c["after"], c["before"]) for c in config_f] == [
        (c["path"], c["change"], c["before"], c["after"]) for c in config_b
    ]
    for suite_f, suite_b in zip(evals_f, evals_b, strict=True):
        for mf, mb in zip(suite_f["metrics"], suite_b["metrics"], strict=True):
            assert mf["metric"] == mb["metric"]
            assert mf["delta"] == (None if mb["delta"] is None else -mb["delta"])
            for sf, sbk in zip(mf["subsets"], mb["subsets"], strict=True):
                assert sf["delta"] == (None if sbk["delta"] is None else -sbk["delta"])
            # Both directions cannot be regressions at once.
            assert not (mf["regression"] and mb["regression"])
    for row_f, row_b in zip(figs_f, figs_b, strict=True):
        assert row_f["delta"] == (None if row_b["delta"] is None else -row_b["delta"])
    for pair_f, pair_b in zip(golden_f, golden_b, strict=True):
        assert (pair_f["before"], pair_f["after"]) == (pair_b["after"], pair_b["before"])
        assert pair_f["changed"] == pair_b["changed"]
    assert summary_f["config_changes"] == summary_b["config_changes"]
    assert summary_f["golden_samples_changed"] == summary_b["golden_samples_changed"]


@settings(max_examples=100, deadline=None)
@given(texts, texts)
def test_word_diff_rebuilds_both_texts(before, after):
    ops = compute.word_diff(before, after)
    assert "".join(o["text"] for o in ops if o["op"] != "insert") == before
    assert "".join(o["text"] for o in ops if o["op"] != "delete") == after
