"""Engine pieces on their own: batch order across ranks, decay groups, schedules, atomic saves."""

from __future__ import annotations

import pytest
import torchvision

from vitcore.engine.checkpoint import atomic_save, load_checkpoint
from vitcore.engine.data import GlobalBatchSampler, ShardSampler
from vitcore.engine.distributed import DistInfo
from vitcore.engine.optim import lr_factor, param_groups
from vitcore.errors import VitcoreError
from vitcore.spec import TrainSpec


def test_ranks_split_each_global_batch_of_the_single_process_order():
    single = list(GlobalBatchSampler(50, 8, DistInfo(), seed=3))
    ranks = [list(GlobalBatchSampler(50, 8, DistInfo(r, 2, r), seed=3)) for r in range(2)]
    assert len(single) == 6 and all(len(b) == 8 for b in single)
    for batch, part0, part1 in zip(single, *ranks):
        assert part0 + part1 == batch
    sampler = GlobalBatchSampler(50, 8, DistInfo(), seed=3)
    sampler.set_epoch(1)
    assert list(sampler) != single, "each epoch has its own order"
    with pytest.raises(VitcoreError, match="not divisible by the 3 processes"):
        GlobalBatchSampler(50, 8, DistInfo(0, 3, 0), seed=0)


def test_evaluation_shards_cover_every_item_once():
    shards = [list(ShardSampler(11, DistInfo(r, 3, r))) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(11))


def test_weight_decay_skips_norms_biases_position_embedding_and_class_token():
    model = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2,
                                                 hidden_dim=16, mlp_dim=32, num_classes=3)
    decay, no_decay = param_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    exempt = {names[id(p)] for p in no_decay["params"]}
    assert {"class_token", "encoder.pos_embedding", "encoder.ln.weight", "heads.head.bias"} <= exempt
    assert {names[id(p)] for p in decay["params"]} >= {"heads.head.weight", "conv_proj.weight"}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0


def test_schedules_warm_up_then_decay_to_min_lr():
    spec = TrainSpec(lr=0.1, min_lr=0.001, schedule="cosine")
    factors = [lr_factor(s, total_steps=100, warmup_steps=10, train=spec, steps_per_epoch=10) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.01, abs=1e-3)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    step = TrainSpec(lr=0.1, schedule="step", step_epochs=2, step_gamma=0.5)
    assert [lr_factor(s * 10, 100, 0, step, 10) for s in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    assert lr_factor(50, 100, 0, TrainSpec(schedule="constant"), 10) == 1.0


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save({"epoch": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"], "no temporary file left behind"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(VitcoreError, match="last.pt: cannot read checkpoint"):
        load_checkpoint(path)


def test_under_torchrun_each_rank_draws_its_own_augmentations_and_a_resume_draws_the_same_again():
    import torch

    from vitcore.builtin.device_transforms import sample_crop_params
    from vitcore.engine.distributed import seed_rank_epoch

    def crops(rank: int, epoch: int, world: int = 2) -> torch.Tensor:
        torch.manual_seed(0)  # what seed_everything gives every rank
        seed_rank_epoch(0, DistInfo(rank=rank, world_size=world), epoch)
        return sample_crop_params(16, 64, 64, (0.08, 1.0), (3 / 4, 4 / 3))

    assert not torch.equal(crops(0, 0), crops(1, 0)), "ranks crop alike: the second GPU adds no variety"
    assert not torch.equal(crops(0, 0), crops(0, 1)), "each epoch draws anew"
    assert torch.equal(crops(1, 3), crops(1, 3)), "a resumed epoch repeats the uninterrupted draws"
    assert torch.equal(crops(0, 0, world=1), crops(1, 5, world=1)), "a single process keeps its stream"
