"""Which part of each request's KV cache a rank of a decode-context-parallel group holds (no PyTorch needed).

Decode context parallelism spreads every request's KV pages over the W ranks of a group: each rank attends
over its shard with etap's decode (which returns each row's LSE), the partial (out, lse) pairs are gathered,
and ``etap.merge_states`` combines them (an empty shard has lse = +inf: weight 0). Two layouts:

- ``"interleaved"``: page j of a request lives on rank j mod W (vLLM's decode context parallelism, at page
  granularity);
- ``"contiguous"``: the pages of a request are cut into W runs of ceil(pages / W), rank r holds run r.

Causal MTP (s_q > 1): query token i of a request of length n sees keys [0, n − s_q + i], so only the last
s_q − 1 keys are masked. A shard that holds none of them is attended without the mask; the shard that holds
them all is attended with etap's causal mask, which then hides exactly them (they are its last keys, in order).
A layout that puts those s_q − 1 keys on two ranks is refused.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence

LAYOUTS = ("interleaved", "contiguous")


@dataclasses.dataclass(frozen=True)
class Shard:
    """One rank's part of every request."""

    pages: List[List[int]]  # per request: the indices (into the request's page list) this rank holds, ascending
    seqlens: List[int]  # per request: tokens this rank holds
    holds_tail: List[bool]  # per request: this rank holds the keys the causal MTP mask hides (s_q > 1)


def owner(page: int, pages: int, world: int, layout: str) -> int:
    """The rank holding page `page` of a request with `pages` pages."""
    if layout == "interleaved":
        return page % world
    if layout == "contiguous":
        run = -(-pages // world)
        return page // run
    raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")


def shard_requests(seqlens: Sequence[int], world: int, rank: int, *, layout: str = "interleaved",
                   page_size: int = 64, s_q: int = 1) -> Shard:
    """Rank `rank`'s shard of requests with lengths `seqlens` (host ints) in a group of `world` ranks."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a group of {world} ranks")
    if page_size < 1 or s_q < 1:
        raise ValueError(f"page_size ({page_size}) and s_q ({s_q}) must be positive")
    all_pages, lengths, tails = [], [], []
    for n in seqlens:
        if n < 0:
            raise ValueError(f"a sequence length is negative ({n})")
        pages = -(-n // page_size)
        mine = [p for p in range(pages) if owner(p, pages, world, layout) == rank]
        tokens = sum(min(page_size, n - p * page_size) for p in mine)
        masked = range(max(n - s_q + 1, 0), n)  # the keys the causal mask hides from some query token
        tail_ranks = {owner(t // page_size, pages, world, layout) for t in masked}
        if len(tail_ranks) > 1:
            raise ValueError(
                f"the last {s_q - 1} keys of a request of length {n} lie on ranks {sorted(tail_ranks)}; the causal "
                "MTP mask needs them on one rank (use fewer draft tokens, another layout or larger pages)")
        all_pages.append(mine)
        lengths.append(tokens)
        tails.append(rank in tail_ranks)
    return Shard(all_pages, lengths, tails)
