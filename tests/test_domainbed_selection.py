"""Model selection and aggregation on hand-made results (DomainBed's model_selection / collect_results)."""

import math

import numpy as np
import pytest

from asymlora.experiments.domainbed.aggregate import markdown, mean_se, rows, trial_results
from asymlora.experiments.domainbed.records import Checkpoint, RunKey, RunRecord
from asymlora.experiments.domainbed.selection import Oracle, TrainingDomainValidation


def ckpt(step, accs):
    """``accs``: {env: (in, out)} for three environments."""
    return Checkpoint(step, {f"env{e}_{p}_acc": v for e, pair in accs.items() for p, v in zip(("in", "out"), pair)})


def run(h, checkpoints, test_env=0, trial=0, variant="lora"):
    return RunRecord(RunKey("D", variant, test_env, h, trial), 3, {"lr": 1e-4}, tuple(checkpoints))


# test env 0; training envs 1 and 2. Validation = mean of env1_out and env2_out.
RUN_A = run(0, [ckpt(0, {0: (0.10, 0.11), 1: (0.5, 0.40), 2: (0.5, 0.40)}),    # val 0.40
                ckpt(100, {0: (0.30, 0.90), 1: (0.9, 0.80), 2: (0.7, 0.60)}),  # val 0.70 <- best of run A
                ckpt(200, {0: (0.20, 0.95), 1: (0.95, 0.70), 2: (0.9, 0.5)})])  # val 0.60, last
RUN_B = run(1, [ckpt(0, {0: (0.15, 0.20), 1: (0.6, 0.60), 2: (0.6, 0.60)}),    # val 0.60
                ckpt(100, {0: (0.45, 0.30), 1: (0.8, 0.75), 2: (0.8, 0.75)}),  # val 0.75 <- best overall
                ckpt(200, {0: (0.50, 0.35), 1: (0.8, 0.70), 2: (0.8, 0.70)})])  # val 0.70, last


def test_training_domain_validation_picks_checkpoint_and_run():
    a = TrainingDomainValidation.run_choice(RUN_A)
    assert (a.step, a.val_acc, a.test_acc) == (100, pytest.approx(0.70), 0.30)
    assert a.in_domain_acc == pytest.approx(0.8) and a.gap == pytest.approx(0.5)
    best = TrainingDomainValidation.sweep_choice([RUN_A, RUN_B])
    assert (best.hparams_seed, best.step, best.test_acc) == (1, 100, 0.45)


def test_oracle_takes_last_checkpoint_and_test_out_split():
    a = Oracle.run_choice(RUN_A)
    assert (a.step, a.val_acc, a.test_acc) == (200, 0.95, 0.20)
    best = Oracle.sweep_choice([RUN_A, RUN_B])
    assert (best.hparams_seed, best.test_acc) == (0, 0.20)  # differs from training-domain validation
    assert best.hparams_seed != TrainingDomainValidation.sweep_choice([RUN_A, RUN_B]).hparams_seed


def test_ties_follow_domainbed():
    first_max = run(0, [ckpt(0, {0: (0.1, 0), 1: (0, 0.5), 2: (0, 0.5)}), ckpt(1, {0: (0.9, 0), 1: (0, 0.5), 2: (0, 0.5)})])
    assert TrainingDomainValidation.run_choice(first_max).step == 0  # max() keeps the first
    twin = run(3, first_max.checkpoints)
    # sorted(...)[::-1]: on equal validation the later (larger) hparams seed wins
    assert TrainingDomainValidation.sweep_choice([twin, first_max]).hparams_seed == 3


def test_mean_se_is_population_std_over_sqrt_n():
    mean, se = mean_se([0.5, 0.6, 0.7])
    assert mean == pytest.approx(60.0)
    assert se == pytest.approx(100 * math.sqrt(((0.1 ** 2) * 2) / 3) / math.sqrt(3))
    assert mean_se([]) is None
    assert mean_se([0.4]) == (pytest.approx(40.0), 0.0)


def test_rows_aggregate_over_trials_and_environments():
    runs = []
    accs = {(0, 0): 0.5, (0, 1): 0.7, (1, 0): 0.2, (1, 1): 0.4}  # (test env, trial) -> test in-split acc
    for (t, s), acc in accs.items():
        other = [e for e in range(3) if e != t]
        runs.append(run(0, [ckpt(0, {t: (acc, 0.0), other[0]: (0.9, 0.8), other[1]: (0.9, 0.8)})], test_env=t, trial=s))
    results = trial_results(runs, TrainingDomainValidation)
    (row,) = rows(results, "D", ["lora"], n_envs=3, test_envs=[0, 1])
    se = 100 * 0.1 / math.sqrt(2)  # population std of two values 0.2 apart is 0.1
    assert row.per_env[0] == (pytest.approx(60.0), pytest.approx(se))
    assert row.per_env[1] == (pytest.approx(30.0), pytest.approx(se))
    assert row.avg == pytest.approx(45.0)
    # DomainBed "Averages": per trial mean over envs (0.35, 0.55), then mean ± SE
    assert row.ood == (pytest.approx(45.0), pytest.approx(100 * np.std([0.35, 0.55]) / np.sqrt(2)))
    assert row.in_domain[0] == pytest.approx(90.0)
    assert row.gap[0] == pytest.approx(45.0)
    (missing,) = rows(results, "D", ["lora"], n_envs=3, test_envs=[0, 1, 2])
    assert missing.per_env[2] is None and missing.avg is None and missing.ood is None
    text = markdown([missing], ["a", "b", "c"], TrainingDomainValidation)
    assert "| lora | 60.0 ± 7.1 | 30.0 ± 7.1 | X | X |" in text


def test_record_round_trip():
    again = RunRecord.from_dict(RUN_A.to_dict())
    assert again == RUN_A
