"""DomainBed's seeding, in/out split and random search (asymlora.experiments.domainbed.protocol).

The reference implementations below are transcriptions of DomainBed's own functions
(``lib/misc.py``: ``seed_hash``, ``split_dataset``; ``hparams_registry``: one RandomState per name).
"""

import hashlib

import numpy as np
import pytest

from asymlora.experiments.domainbed.protocol import (PAPER_SPACE, HParam, default_hparams, draw_hparams,
                                                     in_out_split, random_hparams, seed_hash, split_keys,
                                                     trial_hparams)


def reference_seed_hash(*args):
    args_str = str(args)
    return int(hashlib.md5(args_str.encode("utf-8")).hexdigest(), 16) % (2 ** 31)


def reference_split(n, n_first, seed):
    keys = list(range(n))
    np.random.RandomState(seed).shuffle(keys)
    return keys[:n_first], keys[n_first:]


@pytest.mark.parametrize("args", [(0, 0), (3, 5), (0, "lr"), ("RotatedMNIST", "lora", [0], 1, 2)])
def test_seed_hash_matches_domainbed(args):
    assert seed_hash(*args) == reference_seed_hash(*args)
    assert 0 <= seed_hash(*args) < 2 ** 31


def test_seed_hash_distinguishes_order_and_types():
    assert seed_hash(0, 1) != seed_hash(1, 0)
    assert seed_hash(0, "1") != seed_hash(0, 1)


def test_split_matches_domainbed_and_is_disjoint():
    sizes = [101, 57, 10]
    for trial in (0, 1):
        splits = in_out_split(sizes, trial, 0.2)
        for i, (size, split) in enumerate(zip(sizes, splits)):
            out, in_ = reference_split(size, int(size * 0.2), reference_seed_hash(trial, i))
            assert list(split.out_keys) == out and list(split.in_keys) == in_
            assert len(split.out_keys) == int(size * 0.2)
            assert not set(split.in_keys) & set(split.out_keys)
            assert sorted(split.in_keys + split.out_keys) == list(range(size))


def test_split_is_deterministic_and_depends_on_trial_and_env_only():
    a = in_out_split([200, 200], trial_seed=0)
    assert a == in_out_split([200, 200], trial_seed=0)
    assert a != in_out_split([200, 200], trial_seed=1)
    assert a[0].out_keys != a[1].out_keys  # the environment index enters the seed
    # the hparams seed is not an input: every hparams sample of a trial sees the same split
    assert in_out_split.__code__.co_varnames[:3] == ("env_sizes", "trial_seed", "holdout_fraction")


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError):
        in_out_split([10], 0, 0.0)
    with pytest.raises(ValueError):
        split_keys(5, 6, 0)


def test_hparams_seed_zero_gives_defaults():
    assert trial_hparams(0, 0) == trial_hparams(0, 7) == default_hparams() == {"lr": 5e-5, "dropout": 0.1,
                                                                                "batch_size": 8}


def test_random_hparams_follow_domainbed_scheme():
    for h, t in [(1, 0), (4, 2), (19, 1)]:
        seed = reference_seed_hash(h, t)
        drawn = trial_hparams(h, t)
        assert drawn["lr"] == 10 ** np.random.RandomState(reference_seed_hash(seed, "lr")).uniform(-5, -3.5)
        assert drawn["dropout"] == np.random.RandomState(reference_seed_hash(seed, "dropout")).uniform(0.01, 0.25)
        assert drawn["batch_size"] == 8
        assert drawn == trial_hparams(h, t)  # same seeds, same draw
    assert trial_hparams(1, 0) != trial_hparams(1, 1)  # the trial seed enters the draw
    assert trial_hparams(1, 0) != trial_hparams(2, 0)


def test_per_name_streams_do_not_interact():
    extra = (HParam("momentum", 0.9, lambda r: r.uniform(0, 1)),) + tuple(reversed(PAPER_SPACE))
    for seed in (1, 12345):
        plain, more = random_hparams(seed), random_hparams(seed, extra)
        assert {k: more[k] for k in plain} == plain


def test_draws_stay_in_range():
    for h in range(1, 201):
        drawn = trial_hparams(h, h % 3)
        assert 1e-5 <= drawn["lr"] <= 10 ** -3.5
        assert 0.01 <= drawn["dropout"] <= 0.25
        assert drawn["batch_size"] == 8
    lrs = np.log10([trial_hparams(h, 0)["lr"] for h in range(1, 201)])
    assert lrs.min() < -4.8 and lrs.max() > -3.7  # the whole log range is used


def test_duplicate_names_and_negative_seeds_rejected():
    with pytest.raises(ValueError):
        draw_hparams(1, PAPER_SPACE + PAPER_SPACE[:1])
    with pytest.raises(ValueError):
        trial_hparams(-1, 0)


def test_small_images_space_is_domainbeds_rotated_mnist_lr():
    from asymlora.experiments.domainbed.protocol import get_space

    space = get_space("small_images")
    assert trial_hparams(0, 0, space)["lr"] == 1e-3
    seed = reference_seed_hash(2, 1)
    lr = trial_hparams(2, 1, space)["lr"]
    assert lr == 10 ** np.random.RandomState(reference_seed_hash(seed, "lr")).uniform(-4.5, -2.5)
    # the dropout stream is the same as in the paper's space: per-name streams
    assert trial_hparams(2, 1, space)["dropout"] == trial_hparams(2, 1)["dropout"]
    with pytest.raises(ValueError, match="unknown search space"):
        get_space("huge")


def test_config_errors_name_the_key(tmp_path):
    from asymlora.experiments.domainbed.config import read_config

    path = tmp_path / "c.yaml"
    path.write_text("dataset: RotatedMNIST\nmodel: tiny-vit\nn_trails: 3\n")
    with pytest.raises(ValueError, match=r"unknown key 'n_trails' \(did you mean 'n_trials'\?\)"):
        read_config(path)
    path.write_text("dataset: RotatedMNIST\nmodel: tiny-vit\nvariants: [b_only]\n")
    with pytest.raises(ValueError, match="must include lora"):
        read_config(path)
    path.write_text("dataset: RotatedMNIST\nmodel: tiny-vit\ntest_envs: ['75', 0]\n")
    assert read_config(path).test_envs == (0, 5)  # '75' is a name, 0 an index
    path.write_text("dataset: Rotated\nmodel: tiny-vit\n")
    with pytest.raises(ValueError, match="unknown DomainBed dataset 'Rotated'"):
        read_config(path)
