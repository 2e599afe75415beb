"""Entropy, attention distance, box mass and weight summaries on patterns with known answers."""

from __future__ import annotations

import math

import pytest
import torch
from vitcore_viz_attention.boxes import box_in_model_pixels
from vitcore_viz_attention.metrics import (
    attention_entropy,
    box_overlap,
    mass_in_box_ratio,
    mean_attention_distance,
    patch_centres,
    query_attention,
)
from vitcore_viz_attention.weights import (
    block_rms,
    position_similarity,
    principal_filters,
)

from vitcore.api import Preprocessing


def test_entropy_is_log_t_for_uniform_and_zero_for_one_hot_heads():
    uniform = torch.full((2, 1, 5, 5), 0.2)
    one_hot = torch.eye(5).expand(2, 1, 5, 5)
    entropy = attention_entropy(torch.cat([uniform, one_hot], dim=1))
    assert entropy.tolist() == pytest.approx([math.log(5), 0.0], abs=1e-5)


def test_patch_centres_follow_rectangular_patches_row_major():
    centres = patch_centres((2, 3), (4, 8))
    assert centres.tolist() == [[2, 4], [2, 12], [2, 20], [6, 4], [6, 12], [6, 20]]


def test_attention_distance_in_pixels_on_a_non_square_grid_with_prefix_tokens():
    grid, patch, prefix = (2, 3), (4, 8), 2
    tokens = prefix + 6
    # Head 0: every patch attends to itself. Head 1: every patch attends to its right-hand
    # neighbour (the last column to its left), and half its attention goes to a prefix token,
    # which has no position and must not count.
    self_attention = torch.eye(tokens)
    neighbour = torch.zeros(tokens, tokens)
    for index in range(6):
        row, col = divmod(index, 3)
        target = row * 3 + (col + 1 if col < 2 else col - 1)
        neighbour[prefix + index, prefix + target] = 0.5
        neighbour[prefix + index, 0] = 0.5
    neighbour[:prefix, :prefix] = torch.eye(prefix)
    attention = torch.stack([self_attention, neighbour])[None]
    distance = mean_attention_distance(attention, grid, patch, prefix)
    assert distance.tolist() == pytest.approx([0.0, 8.0])  # one patch sideways is 8 pixels


def test_uniform_attention_distance_is_the_mean_distance_between_patches():
    centres = patch_centres((3, 3), (16, 16))
    attention = torch.full((1, 1, 10, 10), 0.1)
    expected = float(torch.cdist(centres, centres).mean())
    assert mean_attention_distance(attention, (3, 3), (16, 16), 1).item() == pytest.approx(expected, rel=1e-5)


def test_query_attention_keeps_the_patch_columns_of_one_row():
    attention = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    assert query_attention(attention, 0, 1).tolist() == [[[1, 2, 3]], [[17, 18, 19]]]


def test_box_overlap_counts_partly_covered_patches_by_area():
    overlap = box_overlap((2, 2), (8, 8), [4, 0, 16, 8])  # right 3/4 of the top row
    assert overlap.tolist() == [[0.5, 1.0], [0.0, 0.0]]


def test_mass_in_box_ratio_is_one_for_uniform_maps_and_inverse_share_for_maps_inside_the_box():
    box = [0, 0, 8, 8]  # one patch of four
    assert mass_in_box_ratio(torch.ones(2, 2), (8, 8), box) == pytest.approx(1.0)
    inside = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert mass_in_box_ratio(inside, (8, 8), box) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="covers no part"):
        mass_in_box_ratio(inside, (8, 8), [20, 20, 30, 30])


def test_boxes_move_with_the_evaluation_resize_and_centre_crop():
    assert box_in_model_pixels([0, 16, 32, 48], 64, Preprocessing(image_size=32)) == [0, 8, 16, 24]
    cropped = Preprocessing(image_size=56, crop_pct=0.875)  # resize 64 -> 64, crop 4 px each side
    assert box_in_model_pixels([0, 10, 64, 60], 64, cropped) == [0, 6, 56, 56]


def test_position_similarity_skips_prefix_rows_and_lays_out_the_grid():
    grid = (2, 3)
    patches = torch.eye(6) + 0.0
    embedding = torch.cat([torch.ones(2, 6), patches])  # two prefix rows first
    similarity = position_similarity(embedding, grid)
    assert similarity.shape == (2, 3, 2, 3)
    assert torch.allclose(similarity.reshape(6, 6), torch.eye(6))
    with pytest.raises(ValueError, match="fewer than"):
        position_similarity(torch.ones(4, 6), grid)


def test_principal_filters_find_the_dominant_pattern_first():
    generator = torch.Generator().manual_seed(0)
    strong, weak = torch.zeros(3, 2, 2), torch.zeros(3, 2, 2)
    strong[0, 0, 0], weak[2, 1, 1] = 1.0, 1.0
    weights = (torch.randn(64, 1, 1, 1, generator=generator) * 5 * strong
               + torch.randn(64, 1, 1, 1, generator=generator) * weak)
    components, explained = principal_filters(weights, 5)
    assert components.shape == (5, 3, 2, 2) and explained.shape == (5,)
    assert abs(float(components[0, 0, 0, 0])) == pytest.approx(1.0, abs=0.01)
    assert abs(float(components[1, 2, 1, 1])) == pytest.approx(1.0, abs=0.01)
    assert float(explained.sum()) == pytest.approx(1.0, abs=1e-5)
    assert explained[0] > 0.9


def test_block_rms_keeps_small_matrices_and_reduces_big_ones_by_root_mean_square():
    small = torch.randn(10, 20)
    same, block = block_rms(small, 32)
    assert same is small and block == (1, 1)
    signed = torch.tensor([[3.0, -3.0]]).repeat(129, 50)  # averaging would give zeros
    reduced, block = block_rms(signed, 64)
    assert block == (3, 2) and reduced.shape == (43, 50)
    assert torch.allclose(reduced, torch.full((43, 50), 3.0))
