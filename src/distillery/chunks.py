"""Contiguous slices of an input file for ``{chunk}`` jobs."""

from __future__ import annotations


def chunk_bounds(total: int, num_chunks: int, chunk_id: int) -> tuple[int, int]:
    """``[start, end)`` of chunk ``chunk_id`` when ``total`` rows are cut into ``num_chunks``.

    Sizes differ by at most one; the first ``total % num_chunks`` chunks get the extra row.

    Example:
        >>> [chunk_bounds(10, 3, i) for i in range(3)]
        [(0, 4), (4, 7), (7, 10)]
    """
    if num_chunks < 1 or not 0 <= chunk_id < num_chunks:
        raise ValueError(f"chunk {chunk_id} of {num_chunks} does not exist")
    base, extra = divmod(total, num_chunks)
    start = chunk_id * base + min(chunk_id, extra)
    return start, start + base + (1 if chunk_id < extra else 0)
