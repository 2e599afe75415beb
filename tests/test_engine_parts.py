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
    assert {epoch for batch in single for epoch, _ in batch} == {0}, "keys carry the epoch"
    assert len({i for batch in single for _, i in batch}) == 48, "no index twice in an epoch"
    sampler = GlobalBatchSampler(50, 8, DistInfo(), seed=3)
    sampler.set_epoch(1)
    second = list(sampler)
    assert [[i for _, i in b] for b in second] != [[i for _, i in b] for b in single], "each epoch has its own order"
    sampler.set_epoch(1, skip=4)
    assert len(sampler) == 2 and list(sampler) == second[4:], "a mid-epoch resume starts at its batch"
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
    with pytest.raises(VitcoreError, match="last.pt: not a PyTorch checkpoint"):
        load_checkpoint(path)


def test_under_torchrun_a_resumed_run_draws_the_augmentations_the_uninterrupted_one_drew():
    """Each rank reseeds from (seed, rank, epoch) at every epoch: an epoch's device-augment crops
    depend on neither what ran before it (a resumed process has another history) nor on how many
    random numbers earlier epochs used, and differ between epochs and between ranks."""
    import torch

    from vitcore.engine.device_transforms import BatchRandomResizedCrop
    from vitcore.engine.distributed import seed_rank_epoch
    from vitcore.testing import colour_images

    images = colour_images(8, 48)
    crop = BatchRandomResizedCrop(32, (0.08, 1.0), (3 / 4, 4 / 3))

    def run(rank: int, epochs: range, history: int, world: int = 2) -> dict[int, torch.Tensor]:
        """The first augmented batch of each epoch of a run on ``rank`` after ``history`` draws."""
        torch.manual_seed(0)  # what seed_everything gives every rank
        torch.rand(history)  # whatever the process drew before: a resume starts elsewhere
        draws = {}
        for epoch in epochs:
            seed_rank_epoch(0, DistInfo(rank=rank, world_size=world), epoch)
            draws[epoch] = crop(images)
            torch.rand(500 + 37 * epoch)  # the rest of the epoch (dropout masks ...), uneven in length
        return draws

    uninterrupted = run(0, range(4), history=0)
    resumed = run(0, range(2, 4), history=12_345)
    for epoch in (2, 3):
        assert torch.equal(resumed[epoch], uninterrupted[epoch]), f"epoch {epoch} drew other crops after a resume"
    assert not torch.equal(uninterrupted[0], uninterrupted[1]), "each epoch draws anew"
    other_rank = run(1, range(4), history=0)
    assert not any(torch.equal(other_rank[e], uninterrupted[e]) for e in range(4)), \
        "ranks crop alike: the second GPU adds no variety"
    # A single process is not reseeded (last.pt restores its generator): its history shows.
    assert not torch.equal(run(0, range(1), history=12_345, world=1)[0], run(0, range(1), history=0, world=1)[0])
