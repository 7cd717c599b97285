"""The training loss: component weights, the auxiliary head, outlier exposure on unseen graphemes and
heads a source does not supervise (data.extra_heads)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bengaliai.core.config import load_config
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.supervision import AUX_IGNORED, IGNORED, mask_labels, supervised_heads
from bengaliai.training.engine import LossConfig, masked_cross_entropy, outlier_loss, weighted_loss
from bengaliai.training.train import TrainConfig


def _batch(generator: torch.Generator, aux: list[int]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    n = len(aux)
    logits = {
        "grapheme_root": torch.randn(n, 168, generator=generator),
        "vowel_diacritic": torch.randn(n, 11, generator=generator),
        "consonant_diacritic": torch.randn(n, 7, generator=generator),
        "grapheme": torch.randn(n, 1295, generator=generator, requires_grad=True),
    }
    targets = {
        "grapheme_root": torch.randint(0, 168, (n,), generator=generator),
        "vowel_diacritic": torch.randint(0, 11, (n,), generator=generator),
        "consonant_diacritic": torch.randint(0, 7, (n,), generator=generator),
        "grapheme": torch.tensor(aux),
    }
    return logits, targets


def test_outlier_weight_zero_leaves_unseen_rows_out_of_the_grapheme_head() -> None:
    logits, targets = _batch(torch.Generator().manual_seed(0), [5, -1, 17, -1])
    loss = weighted_loss(logits, targets, LossConfig())
    loss.backward()
    grad = logits["grapheme"].grad
    assert grad is not None
    assert torch.all(grad[[1, 3]] == 0) and torch.any(grad[[0, 2]] != 0)


def test_outlier_exposure_adds_the_cross_entropy_to_uniform_of_unseen_rows_only() -> None:
    logits, targets = _batch(torch.Generator().manual_seed(1), [5, -1, 17, -1])
    base = weighted_loss(logits, targets, LossConfig())
    with_oe = weighted_loss(logits, targets, LossConfig(outlier_weight=0.5))
    rows = logits["grapheme"][[1, 3]]
    expected = -F.log_softmax(rows, 1).mean(1).mean()
    assert float((with_oe - base).detach()) == pytest.approx(0.5 * float(expected.detach()) / 4.0, rel=1e-5)  # / sum of weights (2+1+1)
    with_oe.backward()
    grad = logits["grapheme"].grad
    assert grad is not None
    assert torch.all(grad[[1, 3]] != 0)  # unseen rows now train the head


def test_outlier_loss_is_smallest_for_a_flat_distribution_and_zero_without_unseen_rows() -> None:
    flat = torch.zeros(2, 1295)
    peaked = flat.clone()
    peaked[:, 3] = 10.0
    unseen = torch.tensor([-1, -1])
    assert float(outlier_loss(flat, unseen)) == pytest.approx(math.log(1295), rel=1e-6)
    assert float(outlier_loss(peaked, unseen)) > float(outlier_loss(flat, unseen))
    assert float(outlier_loss(peaked, torch.tensor([3, 4]))) == 0.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["loss.outlier_weight=-1"], "loss.outlier_weight: expected >= 0"),
        (["loss.aux_weight=-0.5"], "loss.aux_weight: expected >= 0"),
        (["loss.label_smoothing=1.0"], "loss.label_smoothing"),
        (["loss.weights=[2,1]"], "loss.weights: expected 3 non-negative weights"),
        (["loss.outlier_weight=0.5"], "set model.aux_graphemes=true"),
    ],
)
def test_bad_loss_settings_are_refused_at_load(settings: list[str], message: str) -> None:
    with pytest.raises(BengaliaiError, match=message):
        load_config(TrainConfig, None, settings)


def test_outlier_weight_with_the_head_loads() -> None:
    config = load_config(TrainConfig, None, ["loss.outlier_weight=0.5", "model.aux_graphemes=true"])
    assert config.loss.outlier_weight == 0.5


def test_rows_that_do_not_supervise_a_head_are_left_out_of_its_mean_and_its_gradient() -> None:
    logits, targets = _batch(torch.Generator().manual_seed(2), [5, 7, AUX_IGNORED, AUX_IGNORED])
    for name in ("vowel_diacritic", "consonant_diacritic"):
        targets[name][2:] = IGNORED
        logits[name].requires_grad_(True)
    loss = weighted_loss(logits, targets, LossConfig(outlier_weight=0.5))
    kept = {name: F.cross_entropy(logits[name][:2], targets[name][:2]) for name in ("vowel_diacritic", "consonant_diacritic")}
    root = F.cross_entropy(logits["grapheme_root"], targets["grapheme_root"])
    aux = F.cross_entropy(logits["grapheme"][:2], targets["grapheme"][:2])
    # No row is an unseen grapheme (-1), so outlier exposure adds nothing: AUX_IGNORED is not UNSEEN.
    expected = (2 * root + kept["vowel_diacritic"] + kept["consonant_diacritic"] + 0.5 * aux) / 4
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    loss.backward()
    for name in ("vowel_diacritic", "consonant_diacritic", "grapheme"):
        grad = logits[name].grad
        assert grad is not None and torch.all(grad[2:] == 0) and torch.any(grad[:2] != 0)


def test_a_head_no_row_supervises_adds_zero_not_nan() -> None:
    loss = masked_cross_entropy(torch.randn(3, 11), torch.full((3,), IGNORED), 0.1)
    assert float(loss) == 0.0
    smoothed = masked_cross_entropy(torch.zeros(2, 11), torch.tensor([3, IGNORED]), 0.1)
    assert float(smoothed) == pytest.approx(math.log(11), rel=1e-6)  # the mean over the one supervised row


def test_extra_heads_entries_parse_and_mask_labels() -> None:
    assert supervised_heads("all") == ("grapheme_root", "vowel_diacritic", "consonant_diacritic")
    assert supervised_heads("consonant+root") == ("grapheme_root", "consonant_diacritic")
    for bad in ("", "root+root", "roots", "root,vowel"):
        with pytest.raises(ValueError, match="expected 'all'"):
            supervised_heads(bad)
    labels = torch.tensor([[12, 3, 0, 40], [13, 0, 0, -1]]).numpy()
    assert mask_labels(labels, "all").tolist() == labels.tolist()
    assert mask_labels(labels, "root").tolist() == [[12, IGNORED, IGNORED, AUX_IGNORED], [13, IGNORED, IGNORED, AUX_IGNORED]]
    assert mask_labels(labels, "root+vowel").tolist() == [[12, 3, IGNORED, AUX_IGNORED], [13, 0, IGNORED, AUX_IGNORED]]
    assert labels[0, 1] == 3  # a copy: the input is untouched
