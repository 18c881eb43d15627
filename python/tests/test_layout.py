"""The torch layer's shape and stride arithmetic (etap._layout), on plain ints: no PyTorch needed."""

from __future__ import annotations

import pytest

import etap
from etap import _C, _layout


def test_dense_strides_pass_through():
    assert _layout.strides_for_etap((4, 2, 16), (2 * 16 * 576, 16 * 576, 576), 576) == (18432, 9216, 576)


def test_size_one_dimensions_get_a_dense_stride():
    # k_cache = kv.unsqueeze(-2) of [pages, 64, 576] can carry any stride on its size-1 head dimension.
    assert _layout.strides_for_etap((100, 64, 1), (64 * 656, 656, 1), 576) == (64 * 656, 656, 576)
    # q of batch 1 and s_q 1: only the head stride is real.
    assert _layout.strides_for_etap((1, 1, 16), (7, 3, 576), 576) == (9216, 9216, 576)
    # lse [b, h_q, 1]: the size-1 s_q dimension gets 1 (the innermost extent).
    assert _layout.strides_for_etap((4, 16, 1), (16, 1, 64), 1) == (16, 1, 1)


def test_non_unit_strides_are_kept_even_when_odd():
    # The library, not the torch layer, judges strides: an odd one reaches it unchanged.
    assert _layout.strides_for_etap((4, 64, 2), (64 * 1160, 1160, 580), 576) == (64 * 1160, 1160, 580)


def test_block_table_capacity_is_the_row_width_of_its_memory():
    # SGLang: a [:bs, :16] view of a [max_bs, 2049] buffer can address 2049 pages per row.
    assert _layout.block_table_capacity((8, 16), 2049, 160 * 2049, 0) == 2049
    # A contiguous table: exactly its columns.
    assert _layout.block_table_capacity((8, 16), 16, 8 * 16, 0) == 16
    # The last row of a view is bounded by the storage that is left.
    assert _layout.block_table_capacity((2, 16), 100, 100 + 40, 0) == 40
    # Batch 1: the rest of the storage from the view's start.
    assert _layout.block_table_capacity((1, 16), 16, 1000, 200) == 800


def test_block_table_capacity_never_below_columns_nor_above_the_cost_line():
    assert _layout.block_table_capacity((4, 16), 8, 64, 0) == 16  # overlapping rows: the library says so
    assert _layout.block_table_capacity((1, 16), 16, 2**33, 0) == _layout.largest_max_pages_per_seq(1)


def test_lse_base_names():
    assert _layout.lse_base_code("e") == _C.LSE_NATURAL
    assert _layout.lse_base_code(2) == _C.LSE_BASE2
    assert _layout.lse_base_code("base2") == _C.LSE_BASE2
    with pytest.raises(etap.InvalidArgumentError, match="lse_base must be 'e'"):
        _layout.lse_base_code("10")


def test_dtype_names():
    assert _layout.dtype_code_of("bf16") == _C.DTYPE_BF16
    assert _layout.dtype_code_of("torch.float16") == _C.DTYPE_FP16
    with pytest.raises(etap.InvalidArgumentError, match="dtype 'int8' is not one etap knows"):
        _layout.dtype_code_of("int8")


def test_legacy_metadata_keeps_its_shape_up_to_1024_requests():
    assert {_layout.legacy_metadata_batch(b) for b in (1, 16, 160, 1024)} == {1024}
    assert _layout.legacy_metadata_batch(4096) == 4096


def test_rank_and_shape_messages():
    with pytest.raises(etap.InvalidArgumentError, match=r"q must be 4-D \[b\]; got shape \[2, 3\]"):
        _layout.check_rank("q", (2, 3), 4, "[b]")
    with pytest.raises(etap.InvalidArgumentError, match=r"lse must have shape \[2, 16, 1\]"):
        _layout.check_shape("lse", (2, 1, 16), (2, 16, 1), "")
