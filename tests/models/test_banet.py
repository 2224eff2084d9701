"""BA-Net module: reference parameter names, behaviour, and the fast inference path."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from _reference import read_tsv
from torch import nn

from firesmoke.models.banet import BANet, DayBatchNorm, PixelLSTM
from firesmoke.models.banet_fast import FastBANet, prepare_for_inference


def random_state_dict(rows, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape, dtype in rows:
        if dtype == "int64":
            sd[key] = torch.randint(0, 1000, shape, dtype=torch.int64, generator=g)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[key] = torch.randn(shape, generator=g) * 0.1
    return sd


def randomized_banet(seed: int = 0, **kwargs) -> BANet:
    """BA-Net in eval mode with He-initialised convs and non-trivial batch-norm stats."""
    torch.manual_seed(seed)
    m = BANet(**kwargs)
    g = torch.Generator().manual_seed(seed + 1)
    for mod in m.modules():
        if isinstance(mod, nn.Conv3d | nn.ConvTranspose3d):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
        elif isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.normal_(0.0, 0.3, generator=g)
            mod.running_var.uniform_(0.5, 2.0, generator=g)
            mod.weight.data.uniform_(0.5, 1.5, generator=g)
            mod.bias.data.normal_(0.0, 0.2, generator=g)
    return m.eval()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny shapes: one intra-op thread is as fast and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- reference names -------------------------------------------------------------------
def test_state_dict_equals_reference_key_list():
    rows = read_tsv("banet_state_dict.tsv")
    assert len(rows) == 132
    sd = BANet().state_dict()
    assert list(sd) == [r[0] for r in rows]  # same names in the same order
    for key, shape, dtype in rows:
        assert tuple(sd[key].shape) == shape, key
        assert str(sd[key].dtype) == f"torch.{dtype}", key


def test_reference_state_dict_loads_strictly():
    rows = read_tsv("banet_state_dict.tsv")
    sd = random_state_dict(rows)
    m = BANet()
    result = m.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    lstm = m.stconv1.stconv[1].timeLstm.lstm
    assert torch.equal(lstm.weight_hh_l0, sd["stconv1.stconv.1.timeLstm.lstm.weight_hh_l0"])
    assert torch.equal(m.final_conv.bias, sd["final_conv.bias"])


def test_parameter_count():
    m = BANet()
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == 3_415_361


# -- behaviour -------------------------------------------------------------------------
def test_forward_shapes_any_valid_size():
    m = BANet(n_classes=2, sequence_len=32).eval()
    x = torch.randn(2, 4, 16, 32, 64)
    with torch.no_grad():
        y = m(x)
    assert y.shape == (2, 2, 16, 32, 64)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("shape", [(1, 4, 8, 32, 32), (1, 4, 16, 48, 32), (1, 3, 16, 32, 32)])
def test_invalid_input_shapes_rejected(shape):
    with pytest.raises(ValueError, match="BA-Net"):
        BANet()(torch.zeros(shape))


def test_sequence_len_must_be_multiple_of_16():
    with pytest.raises(ValueError, match="multiple of 16"):
        BANet(sequence_len=40)


def test_late_days_influence_early_logits():
    # the LSTM is causal but the time convolutions and the decoder look both ways
    m = randomized_banet()
    x = torch.randn(1, 4, 16, 32, 32)
    x2 = x.clone()
    x2[:, :, -1] += 1.0
    with torch.no_grad():
        d = (m(x) - m(x2)).abs()
    assert d[:, :, 0].max() > 0


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def numpy_lstm(x, w_ih, w_hh, b_ih, b_hh):
    """Plain numpy LSTM over (N, T, C) with PyTorch's gate order i, f, g, o."""
    n, t, _ = x.shape
    hid = w_hh.shape[1]
    h = np.zeros((n, hid))
    c = np.zeros((n, hid))
    out = np.zeros((n, t, hid))
    for k in range(t):
        z = x[:, k] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = (z[:, j * hid : (j + 1) * hid] for j in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out[:, k] = h
    return out


def test_pixel_lstm_matches_numpy_per_pixel():
    torch.manual_seed(0)
    mod = PixelLSTM(3, 5)
    x = torch.randn(2, 3, 6, 2, 3)  # (B, C, T, H, W)
    with torch.no_grad():
        y = mod(x).numpy()
    p = {k: v.detach().numpy().astype(np.float64) for k, v in mod.lstm.named_parameters()}
    seq = x.numpy().astype(np.float64).transpose(0, 3, 4, 2, 1).reshape(-1, 6, 3)
    want = numpy_lstm(seq, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    want = want.reshape(2, 2, 3, 6, 5).transpose(0, 4, 3, 1, 2)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_day_batch_norm_eval_is_per_channel_affine():
    bn = DayBatchNorm(3)
    bn.bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
    bn.bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
    bn.bn.weight.data.copy_(torch.tensor([1.0, 2.0, -1.0]))
    bn.bn.bias.data.copy_(torch.tensor([0.0, 1.0, 3.0]))
    bn.eval()
    x = torch.randn(2, 3, 4, 5, 6)
    with torch.no_grad():
        y = bn(x).numpy()
    xn = x.numpy()
    mean = np.array([0.5, -1.0, 2.0])[None, :, None, None, None]
    var = np.array([4.0, 0.25, 1.0])[None, :, None, None, None]
    gamma = np.array([1.0, 2.0, -1.0])[None, :, None, None, None]
    beta = np.array([0.0, 1.0, 3.0])[None, :, None, None, None]
    want = (xn - mean) / np.sqrt(var + 1e-5) * gamma + beta
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_day_batch_norm_training_uses_batch_and_day_statistics():
    bn = DayBatchNorm(2).train()
    x = torch.randn(3, 2, 4, 5, 5) * 3 + 1
    y = bn(x)
    xn = x.detach().numpy()
    mean = xn.mean(axis=(0, 2, 3, 4), keepdims=True)
    var = xn.var(axis=(0, 2, 3, 4), keepdims=True)
    np.testing.assert_allclose(y.detach().numpy(), (xn - mean) / np.sqrt(var + 1e-5), atol=1e-4)


def test_overfits_one_tiny_batch():
    torch.manual_seed(0)
    m = BANet(sequence_len=16).train()
    x = torch.randn(2, 4, 16, 32, 32)  # batch norm needs > 1 value at the 1/32 level
    target = torch.zeros(2, 1, 16, 32, 32)
    target[:, :, 5:9, 8:20, 10:22] = 1.0
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = loss_fn(m(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0], losses
    assert all(b < a for a, b in itertools.pairwise(losses)), losses


# -- fast inference path ----------------------------------------------------------------
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(
    ("batch", "t", "h", "w", "n_classes"),
    [(1, 16, 32, 32, 1), (2, 16, 32, 64, 1), (1, 32, 64, 32, 2)],
)
def test_fast_path_equals_eval_module(channels_last, batch, t, h, w, n_classes):
    m = randomized_banet(seed=batch + t, n_classes=n_classes)
    x = torch.randn(batch, 4, t, h, w) * 2
    with torch.no_grad():
        want = m(x)
    fast = prepare_for_inference(m, channels_last=channels_last)
    got = fast(x)
    assert got.shape == want.shape
    assert got.is_inference()  # ran under torch.inference_mode
    assert want.abs().max() > 0.5  # the comparison is not between near-zero numbers
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_fast_path_leaves_model_untouched_and_is_independent():
    m = randomized_banet()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    fast = prepare_for_inference(m)
    assert isinstance(fast, FastBANet) and not fast.training
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert m.training is False
    # training the original later does not alter the prepared copy
    x = torch.randn(1, 4, 16, 32, 32)
    y0 = fast(x)
    with torch.no_grad():
        m.final_conv.bias.add_(1.0)
    torch.testing.assert_close(fast(x), y0)


def test_fast_path_without_onednn_fusion_matches():
    m = randomized_banet(seed=3)
    x = torch.randn(1, 4, 16, 32, 32)
    fast = prepare_for_inference(m)
    fused = fast(x)
    fast.use_fusion = False
    torch.testing.assert_close(fast(x), fused, atol=1e-5, rtol=1e-5)


def test_fast_path_rejects_bad_input():
    fast = prepare_for_inference(BANet().eval())
    with pytest.raises(ValueError, match="BA-Net"):
        fast(torch.zeros(1, 4, 16, 30, 32))


@pytest.mark.slow
def test_fast_path_equals_eval_module_on_a_full_tile():
    m = randomized_banet(seed=7)
    x = torch.randn(1, 4, 64, 128, 128)
    with torch.inference_mode():
        want = m(x)
    got = prepare_for_inference(m)(x)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


# -- only some output days ------------------------------------------------------------------
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("days", [(0, 32), (8, 23), (9, 24), (0, 1), (31, 32), (5, 6), (1, 31)])
def test_days_give_the_slice_of_the_full_output(channels_last, days):
    """The pruned decoder computes exactly the kept days (edges and odd bounds included)."""
    m = randomized_banet(seed=11)
    x = torch.randn(2, 4, 32, 32, 32) * 2
    with torch.no_grad():
        full = m(x)
    fast = prepare_for_inference(m, channels_last=channels_last)
    got = fast(x, days=days)
    want = full[:, :, days[0] : days[1]]
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # the pruned pass equals the fast module's own full pass to float rounding
    torch.testing.assert_close(got, fast(x)[:, :, days[0] : days[1]], atol=2e-5, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(m(x, days=days), want)


@pytest.mark.parametrize("days", [(0, 0), (-1, 3), (3, 2), (0, 17)])
def test_bad_days_rejected(days):
    m = randomized_banet()
    fast = prepare_for_inference(m)
    x = torch.zeros(1, 4, 16, 32, 32)
    with pytest.raises(ValueError, match="days"):
        fast(x, days=days)
    with pytest.raises(ValueError, match="days"), torch.no_grad():
        m(x, days=days)


# -- time-major fast path: kernel variants, dtypes, sub-batches ---------------------------
@pytest.mark.parametrize("first_conv", ["unfold", "direct"])
@pytest.mark.parametrize("use_fusion", [True, False])
def test_fast_path_kernel_variants_equal_eval_module(first_conv, use_fusion):
    """The CUDA-default row-unfold first convolution and the plain kernels, run on CPU."""
    m = randomized_banet(seed=5)
    x = torch.randn(2, 4, 16, 32, 64) * 2
    with torch.no_grad():
        want = m(x)
    fast = prepare_for_inference(m)
    fast.first_conv = first_conv
    fast.use_fusion = use_fusion
    torch.testing.assert_close(fast(x), want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fast(x, days=(3, 12)), want[:, :, 3:12], atol=1e-4, rtol=1e-4)


def test_fast_path_sub_batches_equal_one_pass():
    m = randomized_banet(seed=6)
    x = torch.randn(3, 4, 16, 32, 32)
    fast = prepare_for_inference(m)
    whole = fast(x)
    fast.max_elements = 16 * 32 * 32 * 128  # one sample per pass
    assert fast.sub_batch(x.shape) == 1
    torch.testing.assert_close(fast(x), whole, atol=1e-5, rtol=1e-5)
    # passes of equal size: 32 tiles of 64 x 128 x 128 -> 16 + 16 below 2**31 elements
    fast.max_elements = 2**31 - 1
    assert fast.sub_batch(torch.Size((32, 4, 64, 128, 128)), fused_lstm=True) == 16
    assert fast.sub_batch(torch.Size((32, 4, 64, 128, 128))) == 11  # LSTM gates: 3 passes
    assert fast.sub_batch(torch.Size((8, 4, 64, 128, 128))) == 8


def test_fast_module_built_inside_inference_mode_runs():
    """The engine builds models under inference_mode; their tensors are inference tensors."""
    m = randomized_banet(seed=4)
    x = torch.randn(1, 4, 16, 32, 32)
    with torch.inference_mode():
        fast = prepare_for_inference(m)
    with torch.no_grad():
        want = m(x)
    torch.testing.assert_close(fast(x), want, atol=1e-4, rtol=1e-4)


def test_fast_path_runs_in_the_module_dtype_and_recasts_after_to():
    m = randomized_banet(seed=8)
    x = torch.randn(1, 4, 16, 32, 32)
    fast = prepare_for_inference(m)
    y32 = fast(x)  # fills the float32 weight caches
    fast = fast.to(torch.float64)  # caches dropped, weights now float64
    y64 = fast(x)
    assert y64.dtype == torch.float64
    with torch.no_grad():
        want = m.double()(x.double())
    # folded weights are float32 values: agreement to about float32 weight rounding
    torch.testing.assert_close(y64, want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(y32.double(), want, atol=1e-4, rtol=1e-4)


def test_fast_path_under_autocast_runs_natively_in_bf16():
    m = randomized_banet(seed=9)
    x = torch.randn(1, 4, 16, 32, 32)
    fast = prepare_for_inference(m)
    want = fast(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast.compute_dtype(x) == torch.bfloat16
        got = fast(x)
    assert got.dtype == torch.bfloat16
    assert fast.final.weight.dtype == torch.float32  # master weights untouched
    err = (got.float() - want).abs().max() / want.abs().max()
    assert err < 0.1, err


def test_unknown_first_conv_rejected():
    fast = prepare_for_inference(randomized_banet())
    fast.first_conv = "winograd"
    with pytest.raises(ValueError, match="first_conv"):
        fast(torch.zeros(1, 4, 16, 32, 32))


def test_no_tf32_is_nested_and_restores_flags():
    from firesmoke.models.precision import no_tf32, tf32_enabled

    before = tf32_enabled()
    torch.backends.cudnn.allow_tf32 = True
    try:
        with no_tf32():
            assert tf32_enabled() == (False, False)
            with no_tf32():
                assert tf32_enabled() == (False, False)
            assert tf32_enabled() == (False, False)  # the outer block still holds
        assert tf32_enabled()[1] is True
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_state_dict_of_fast_module_has_no_cached_copies():
    fast = prepare_for_inference(randomized_banet())
    keys = set(fast.state_dict())
    fast(torch.zeros(1, 4, 16, 32, 32))
    assert set(fast.state_dict()) == keys


# -- fused Triton LSTM (runs on CPU through Triton's interpreter when Triton is installed) --
_TRITON_CHECK = """
import torch
from torch import nn
from firesmoke.models.lstm_triton import lstm_forward
torch.manual_seed(0)
lstm = nn.LSTM(32, 32)
x = torch.randn(12, 70, 32)  # 70 sequences: a partial last block
with torch.no_grad():
    want = lstm(x)[0]
got = lstm_forward(lstm, x.half(), block=32)
assert got is not None and got.dtype == torch.float16 and got.shape == want.shape
torch.testing.assert_close(got.float(), want, atol=3e-3, rtol=3e-3)
print("ok")
"""


def test_triton_lstm_matches_torch_lstm_in_fp16_interpreted():
    """The kernel itself, through Triton's CPU interpreter (set before Triton loads)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-c", _TRITON_CHECK], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


def test_triton_lstm_declines_what_it_does_not_handle(monkeypatch):
    from firesmoke.models.lstm_triton import lstm_forward

    lstm = nn.LSTM(32, 32)
    assert lstm_forward(lstm, torch.randn(4, 8, 32)) is None  # float32 on CPU
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert lstm_forward(lstm, torch.randn(4, 8, 32)) is None  # float32: cuDNN keeps it exact
    assert lstm_forward(nn.LSTM(20, 32), torch.randn(4, 8, 20).half()) is None  # 20 % 16
