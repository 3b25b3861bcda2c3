"""Every hand-written backward against numerical gradients (gradcheck, float64), and each
Function's forward against its plain-torch reference."""

from __future__ import annotations

import torch
from torch.autograd import gradcheck

from textgen_core.models.stack.attention import AttentionFunction, attention_reference
from textgen_core.models.stack.dense import DenseFunction, ReLUFunction
from textgen_core.models.stack.dropout import DropoutFunction, dropout_mask
from textgen_core.models.stack.embedding import EmbeddingFunction, PositionalEmbeddingFunction
from textgen_core.models.stack.layer_norm import LayerNormFunction
from textgen_core.models.stack.loss import CrossEntropyFunction
from textgen_core.models.stack.recurrent import LSTMFunction, RNNFunction, lstm_reference, rnn_reference

D = torch.float64


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + sum(shape))
    return torch.randn(*shape, generator=g, dtype=D).requires_grad_()


def test_embedding_gradcheck_and_repeated_tokens_sum() -> None:
    ids = torch.tensor([[1, 3, 1], [1, 0, 2]])  # token 1 three times
    weight = _rand(5, 4)
    assert gradcheck(EmbeddingFunction.apply, (ids, weight))
    EmbeddingFunction.apply(ids, weight).sum().backward()
    assert weight.grad[1].tolist() == [3.0] * 4 and weight.grad[4].tolist() == [0.0] * 4


def test_positional_embedding_gradcheck() -> None:
    assert gradcheck(PositionalEmbeddingFunction.apply, (_rand(2, 3, 4), _rand(5, 4)))


def test_dense_and_relu_gradcheck() -> None:
    assert gradcheck(DenseFunction.apply, (_rand(2, 3, 4), _rand(4, 5), _rand(5)))
    x = _rand(3, 4)
    with torch.no_grad():
        x[x.abs() < 0.05] = 0.5  # keep away from the kink, where finite differences disagree
    assert gradcheck(ReLUFunction.apply, (x,))


def test_layer_norm_gradcheck_and_constant_input_stays_finite() -> None:
    assert gradcheck(LayerNormFunction.apply, (_rand(2, 3, 6), _rand(6), _rand(6), 1e-5))
    out = LayerNormFunction.apply(torch.ones(1, 1, 6, dtype=D), torch.ones(6, dtype=D),
                                  torch.zeros(6, dtype=D), 1e-5)
    assert torch.isfinite(out).all()


def test_attention_gradcheck_and_causality() -> None:
    args = (_rand(2, 4, 4), _rand(4, 12), _rand(12), _rand(4, 4), _rand(4), 2)
    assert gradcheck(AttentionFunction.apply, args)
    out = AttentionFunction.apply(*args)
    assert torch.allclose(out, attention_reference(*args))
    changed = args[0].detach().clone()
    changed[:, -1] += 1.0  # the last position must not affect earlier ones
    out2 = AttentionFunction.apply(changed, *args[1:])
    assert torch.allclose(out[:, :-1], out2[:, :-1])


def test_dropout_gradcheck_with_a_fixed_mask() -> None:
    x = _rand(3, 4)
    mask = dropout_mask(x.detach(), 0.5)
    assert gradcheck(DropoutFunction.apply, (x, mask))
    assert set(mask.unique().tolist()) <= {0.0, 2.0}


def test_cross_entropy_gradcheck_and_value() -> None:
    logits, targets = _rand(2, 3, 7), torch.tensor([[0, 6, 2], [2, 2, 1]])
    assert gradcheck(CrossEntropyFunction.apply, (logits, targets))
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1))
    assert torch.allclose(CrossEntropyFunction.apply(logits, targets), expected)


def test_rnn_gradcheck_and_matches_torch_rnn() -> None:
    args = (_rand(2, 4, 3), _rand(2, 5), _rand(3, 5), _rand(5, 5), _rand(5))
    assert gradcheck(RNNFunction.apply, args)
    torch_rnn = torch.nn.RNN(3, 5, batch_first=True, dtype=D)
    with torch.no_grad():
        torch_rnn.weight_ih_l0.copy_(args[2].t())
        torch_rnn.weight_hh_l0.copy_(args[3].t())
        torch_rnn.bias_ih_l0.copy_(args[4])
        torch_rnn.bias_hh_l0.zero_()
        expected, _ = torch_rnn(args[0], args[1].unsqueeze(0))
    assert torch.allclose(RNNFunction.apply(*args), expected)
    assert torch.allclose(rnn_reference(*args), expected)


def test_lstm_gradcheck_including_the_cell_state_output() -> None:
    args = (_rand(2, 3, 3), _rand(2, 5), _rand(2, 5, seed=1), _rand(3, 20), _rand(5, 20), _rand(20))
    assert gradcheck(LSTMFunction.apply, args, fast_mode=True)
    torch_lstm = torch.nn.LSTM(3, 5, batch_first=True, dtype=D)
    with torch.no_grad():  # torch packs the gates in the same order: input, forget, cell, output
        torch_lstm.weight_ih_l0.copy_(args[3].t())
        torch_lstm.weight_hh_l0.copy_(args[4].t())
        torch_lstm.bias_ih_l0.copy_(args[5])
        torch_lstm.bias_hh_l0.zero_()
        expected, (_, c_n) = torch_lstm(args[0], (args[1].unsqueeze(0), args[2].unsqueeze(0)))
    hs, c_last = LSTMFunction.apply(*args)
    assert torch.allclose(hs, expected) and torch.allclose(c_last, c_n[0])
    ref_hs, ref_c = lstm_reference(*args)
    assert torch.allclose(ref_hs, expected) and torch.allclose(ref_c, c_n[0])
