import numpy as np
import pytest

from pipelines.core.evaluation import classification_metrics, decide, per_class_table, tune_threshold


def test_metrics_match_hand_computed_values():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.4, 0.5, 0.1],  # second is wrong (predicted 1)
            [0.1, 0.8, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.2, 0.7],
            [0.3, 0.1, 0.6],
        ]
    )
    m = classification_metrics(y_true, probabilities, ["a", "b", "c"], top_k=2)
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["top_2_accuracy"] == 1.0
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 2]]
    assert m["macro_f1"] == pytest.approx(np.mean([2 / 3, 0.8, 1.0]))
    assert 0.9 < m["roc_auc_ovr"] <= 1.0
    assert "| a | 1.0000 | 0.5000 |" in per_class_table(m)


def test_binary_auc_and_single_class_split():
    y = np.array([0, 1, 1, 0])
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    assert classification_metrics(y, p, ["no", "yes"])["roc_auc_ovr"] == 1.0
    assert classification_metrics(np.array([1, 1]), p[:2], ["no", "yes"])["roc_auc_ovr"] is None


def test_top_k_is_reported_only_where_it_can_miss():
    y = np.array([0, 1])
    p = np.array([[0.2, 0.8], [0.9, 0.1]])  # both wrong
    assert classification_metrics(y, p, ["a", "b"], top_k=1)["top_1_accuracy"] == 0.0
    assert "top_2_accuracy" not in classification_metrics(y, p, ["a", "b"], top_k=2)  # always 1: not reported


def test_tuned_threshold_maximises_f1_and_sits_between_scores():
    is_positive = np.array([0, 0, 0, 1, 0, 1, 1])
    scores = np.array([0.05, 0.1, 0.2, 0.3, 0.35, 0.6, 0.9])
    threshold = tune_threshold(is_positive, scores)
    assert 0.2 < threshold < 0.3  # all three positives, one false positive: F1 6/7, the best
    assert threshold not in scores


def test_cost_threshold_minimises_the_cost_of_mistakes():
    is_positive = np.array([0, 0, 0, 1, 0, 1, 1])
    scores = np.array([0.05, 0.1, 0.2, 0.3, 0.35, 0.6, 0.9])
    # Missing a fraud costs 10 false alarms: accept down to 0.3 (cost 1 false positive), not 0.6 (cost 10).
    assert 0.2 < tune_threshold(is_positive, scores, cost=(1, 10)) < 0.3
    # False alarms dear: accept only 0.6 and 0.9 (one fraud missed, cost 1) rather than pay 5 for the one at 0.35.
    assert 0.35 < tune_threshold(is_positive, scores, cost=(5, 1)) < 0.6
    # The highest score a false alarm dearer than the one fraud: accept nothing.
    assert tune_threshold(np.array([1, 0]), np.array([0.2, 0.9]), cost=(100, 1)) > 0.9


def test_decision_rule_and_metrics_at_the_tuned_point():
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8]])
    assert decide(p).tolist() == [0, 0, 0, 1]
    decision = {"positive": 1, "threshold": 0.35}
    assert decide(p, decision).tolist() == [0, 0, 1, 1]
    m = classification_metrics(y, p, ["ham", "spam"], decision=decision)
    assert m["accuracy"] == 1.0 and m["argmax_accuracy"] == 0.75
    assert m["decision"] == {"positive": "spam", "threshold": 0.35}
    assert m["pr_auc"] == 1.0
    assert classification_metrics(y, p, ["a", "b", "c"][:2])["pr_auc"] == 1.0
