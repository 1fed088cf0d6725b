import pytest

from distillery.chunks import chunk_bounds


@pytest.mark.parametrize("total,chunks", [(0, 1), (1, 3), (10, 3), (7, 7), (100, 8)])
def test_chunks_cover_input_once(total, chunks):
    bounds = [chunk_bounds(total, chunks, i) for i in range(chunks)]
    covered = [i for start, end in bounds for i in range(start, end)]
    assert covered == list(range(total))
    sizes = [end - start for start, end in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_bad_chunk_id():
    with pytest.raises(ValueError):
        chunk_bounds(10, 2, 2)
