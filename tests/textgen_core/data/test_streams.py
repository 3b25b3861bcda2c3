import itertools

import numpy as np
import pytest
import torch

from textgen_core.data.streams import StreamSampler
from textgen_core.errors import CorpusError

TOKENS = np.arange(500, dtype=np.uint16)


def sampler(seed: int = 0) -> StreamSampler:
    return StreamSampler(TOKENS, block_size=10, batch_size=3, windows=4,
                         generator=torch.Generator().manual_seed(seed), device=torch.device("cpu"))


def test_windows_of_a_stream_are_consecutive_then_the_streams_restart() -> None:
    s = sampler()
    draws = [s.next() for _ in range(9)]
    assert [fresh for _, _, fresh in draws] == [True, False, False, False] * 2 + [True]
    for (x0, y0, _), (x1, _, _) in itertools.pairwise(draws[:4]):
        assert torch.equal(x1[:, 0], x0[:, -1] + 1)  # window k+1 begins where window k ended
        assert torch.equal(y0, x0 + 1)
    assert not torch.equal(draws[4][0][:, 0], draws[3][0][:, -1] + 1)
    assert len(set(draws[0][0][:, 0].tolist())) == 3  # rows are different streams


def test_state_dict_resumes_the_same_windows() -> None:
    a = sampler()
    for _ in range(2):
        a.next()
    generator_state = a.generator.get_state()
    saved = a.state_dict()
    b = sampler(seed=99)
    b.generator.set_state(generator_state)
    b.load_state_dict(saved)
    for _ in range(6):
        (xa, _, fa), (xb, _, fb) = a.next(), b.next()
        assert torch.equal(xa, xb) and fa == fb


def test_too_short_for_the_streams() -> None:
    with pytest.raises(CorpusError, match="fewer than --yoke-windows x --block-size"):
        StreamSampler(TOKENS[:40], 10, 2, 4, torch.Generator(), torch.device("cpu"))
