"""etap.sharding: which pages and tokens of each request a rank of a context-parallel group holds (no PyTorch)."""

from __future__ import annotations

import pytest

from etap.sharding import shard_requests


@pytest.mark.parametrize("layout", ["interleaved", "contiguous"])
@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
def test_every_page_and_token_is_on_exactly_one_rank(layout, world):
    seqlens = [0, 1, 63, 64, 65, 200, 1000, 4097]
    shards = [shard_requests(seqlens, world, r, layout=layout) for r in range(world)]
    for i, n in enumerate(seqlens):
        pages = sorted(p for s in shards for p in s.pages[i])
        assert pages == list(range(-(-n // 64)))
        assert sum(s.seqlens[i] for s in shards) == n
        for s in shards:
            assert s.pages[i] == sorted(s.pages[i])


def test_interleaved_puts_page_j_on_rank_j_mod_world():
    shard = shard_requests([64 * 10 + 5], 4, 1, layout="interleaved")
    assert shard.pages == [[1, 5, 9]]
    assert shard.seqlens == [3 * 64]
    tail = shard_requests([64 * 10 + 5], 4, 2, layout="interleaved")
    assert tail.pages == [[2, 6, 10]] and tail.seqlens == [2 * 64 + 5]


def test_contiguous_cuts_runs_of_ceil_pages_over_world():
    shards = [shard_requests([64 * 10], 4, r, layout="contiguous") for r in range(4)]
    assert [s.pages[0] for s in shards] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_a_short_request_leaves_other_ranks_empty():
    shards = [shard_requests([100], 4, r) for r in range(4)]
    assert [s.seqlens[0] for s in shards] == [64, 36, 0, 0]


def test_the_rank_with_the_last_key_holds_the_causal_tail():
    # s_q = 2: only the last key is masked (from query token 0); it lies on the last page.
    shards = [shard_requests([64 * 5 + 1], 2, r, s_q=2) for r in range(2)]
    assert [s.holds_tail[0] for s in shards] == [False, True]  # page 5 → rank 1 (interleaved)
    assert [s.holds_tail[0] for s in (shard_requests([128], 2, r, s_q=1) for r in range(2))] == [False, False]


def test_a_causal_tail_split_over_two_ranks_is_refused():
    # s_q = 4: the last 3 keys of a request of length 129 are tokens 126, 127 (page 1) and 128 (page 2).
    with pytest.raises(ValueError, match="lie on ranks"):
        shard_requests([129], 2, 0, s_q=4, layout="interleaved")
    shard_requests([129], 1, 0, s_q=4)  # one rank holds everything


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="layout"):
        shard_requests([1], 2, 0, layout="striped")
    with pytest.raises(ValueError, match="not in a group"):
        shard_requests([1], 2, 2)
    with pytest.raises(ValueError, match="negative"):
        shard_requests([-1], 1, 0)
