"""What a synthetic dataset draws: balanced, seeded grapheme plans for both splits."""

from __future__ import annotations

from collections import Counter

from bengaliai.core.competition import seen_triples
from bengaliai.synth.sampling import sample_test, sample_train


def test_train_sampling_is_balanced_and_seeded() -> None:
    plan = sample_train(3000, seed=0)
    counts = Counter(g.text for g in plan)
    assert len(counts) == 1295 and set(counts.values()) == {2, 3}
    assert plan == sample_train(3000, seed=0)
    assert plan != sample_train(3000, seed=1)
    assert sample_train(0, seed=0) == []


def test_test_sampling_holds_unseen_graphemes() -> None:
    plan = sample_test(1000, seed=0, unseen_fraction=0.15)
    unseen = [g for g, seen in plan if not seen]
    assert len(unseen) == 150 and len({g.text for g in unseen}) == 150
    assert all(g.labels not in seen_triples() for g in unseen)
    assert all(g.labels in seen_triples() for g, seen in plan if seen)
    assert sample_test(1000, seed=0) == plan and sample_test(1000, seed=1) != plan


def test_negative_seeds_work() -> None:
    assert sample_train(5, seed=-1) == sample_train(5, seed=-1)
    assert len(sample_test(5, seed=-3)) == 5
