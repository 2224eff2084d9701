"""Smoke classifier (ResNet-50 variant) and segmenter (U-Net), and input normalisation."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from _reference import read_tsv
from torch import nn

from firesmoke.models.normalization import (
    BANET,
    S2_FILE_BANDS,
    SMOKE_S2,
    Normalization,
    default_normalization,
)
from firesmoke.models.resnet import smoke_resnet50
from firesmoke.models.unet import SmokeUNet, Up


def random_state_dict(rows, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape, dtype in rows:
        if dtype == "int64":
            sd[key] = torch.randint(0, 1000, shape, dtype=torch.int64, generator=g)
        else:
            sd[key] = torch.rand(shape, generator=g) + 0.5
    return sd


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny shapes: one intra-op thread is as fast and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


CASES = [
    ("smoke_resnet50_state_dict.tsv", lambda: smoke_resnet50(), 320, 23_507_585),
    ("smoke_unet_state_dict.tsv", lambda: SmokeUNet(), 128, 17_272_577),
]


# -- reference names -------------------------------------------------------------------
@pytest.mark.parametrize(("tsv", "build", "n_keys", "n_params"), CASES)
def test_state_dict_equals_reference_key_list(tsv, build, n_keys, n_params):
    rows = read_tsv(tsv)
    assert len(rows) == n_keys
    sd = build().state_dict()
    assert list(sd) == [r[0] for r in rows]
    for key, shape, dtype in rows:
        assert tuple(sd[key].shape) == shape, key
        assert str(sd[key].dtype) == f"torch.{dtype}", key


@pytest.mark.parametrize(("tsv", "build", "n_keys", "n_params"), CASES)
def test_reference_state_dict_loads_strictly_and_counts(tsv, build, n_keys, n_params):
    rows = read_tsv(tsv)
    sd = random_state_dict(rows)
    m = build()
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == n_params
    m.load_state_dict(sd, strict=True)
    for key, value in m.state_dict().items():
        assert torch.equal(value, sd[key]), key


@pytest.mark.parametrize(("tsv", "build", "n_keys", "n_params"), CASES)
def test_reduced_width_keeps_names_and_scales_shapes(tsv, build, n_keys, n_params):
    rows = read_tsv(tsv)
    small = smoke_resnet50(width=16) if "resnet" in tsv else SmokeUNet(base=16)
    sd = small.state_dict()
    assert list(sd) == [r[0] for r in rows]
    for key, shape, _ in rows:
        got = tuple(sd[key].shape)
        if key in ("conv1.weight", "inc.double_conv.0.weight"):
            assert got == (shape[0] // 4, 12, *shape[2:])  # input bands are not scaled
        elif key in ("fc.weight", "outc.conv.weight"):
            assert got == (1, shape[1] // 4, *shape[2:])  # one output logit
        elif key in ("fc.bias", "outc.conv.bias") or key.endswith("num_batches_tracked"):
            assert got == shape
        else:
            assert got[0] * 4 == shape[0], key
    assert sum(p.numel() for p in small.parameters()) < n_params / 10


# -- classifier ------------------------------------------------------------------------
def test_resnet_stem_and_head_as_published():
    m = smoke_resnet50()
    assert (m.conv1.kernel_size, m.conv1.stride, m.conv1.padding) == ((3, 3), (2, 2), (3, 3))
    assert m.conv1.bias is None
    assert (m.fc.in_features, m.fc.out_features) == (2048, 1)
    # torchvision v1.5 layout: the stride sits in the 3x3 conv of the first block
    assert m.layer2[0].conv2.stride == (2, 2) and m.layer2[0].conv1.stride == (1, 1)
    assert [len(getattr(m, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]


@pytest.mark.parametrize("size", [90, 120, 33])
def test_resnet_output_shape(size):
    m = smoke_resnet50(width=8).eval()
    with torch.no_grad():
        y = m(torch.randn(3, 12, size, size))
    assert y.shape == (3, 1)


def test_resnet_rejects_wrong_band_count():
    with pytest.raises(ValueError, match="12"):
        smoke_resnet50(width=8)(torch.zeros(1, 13, 90, 90))


def test_resnet_overfits_one_tiny_batch():
    torch.manual_seed(0)
    m = smoke_resnet50(width=8).train()
    x = torch.randn(8, 12, 32, 32)
    y = torch.tensor([[1.0], [0.0]] * 4)
    x[y[:, 0] == 1, :3] += 1.0  # a learnable signal
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(m(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


# -- segmenter -------------------------------------------------------------------------
@pytest.mark.parametrize(("h", "w"), [(90, 90), (120, 120), (33, 47), (16, 16), (1024, 1024)])
def test_unet_output_has_input_size(h, w):
    m = SmokeUNet(base=4).eval()
    with torch.no_grad():
        y = m(torch.randn(1, 12, h, w))
    assert y.shape == (1, 1, h, w)


def test_unet_transposed_variant_runs():
    m = SmokeUNet(base=4, bilinear=False, n_classes=2).eval()
    with torch.no_grad():
        assert m(torch.randn(2, 12, 45, 60)).shape == (2, 2, 45, 60)
    assert "up1.up.weight" in m.state_dict()


def numpy_bilinear_align_corners(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Upsample (C, H, W) bilinearly with corner pixels aligned."""
    _, h, w = x.shape
    ys = np.linspace(0, h - 1, out_h) if out_h > 1 else np.zeros(1)
    xs = np.linspace(0, w - 1, out_w) if out_w > 1 else np.zeros(1)
    y0 = np.floor(ys).astype(int).clip(0, h - 1)
    x0 = np.floor(xs).astype(int).clip(0, w - 1)
    y1 = (y0 + 1).clip(0, h - 1)
    x1 = (x0 + 1).clip(0, w - 1)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    top = x[:, y0][:, :, x0] * (1 - fx) + x[:, y0][:, :, x1] * fx
    bot = x[:, y1][:, :, x0] * (1 - fx) + x[:, y1][:, :, x1] * fx
    return top * (1 - fy) + bot * fy


def test_up_block_upsamples_pads_and_concatenates_skip_first():
    up = Up(6, 2)
    up.conv = nn.Identity()  # expose the tensor fed to the double conv
    x = torch.randn(1, 3, 5, 7)
    skip = torch.randn(1, 3, 11, 16)  # 10 x 14 after upsampling: pad 1 row, 2 columns
    got = up(x, skip).numpy()[0]
    upsampled = numpy_bilinear_align_corners(x.numpy()[0].astype(np.float64), 10, 14)
    want_up = np.zeros((3, 11, 16))
    want_up[:, 0:10, 1:15] = upsampled  # dy=1 -> (0 top, 1 bottom); dx=2 -> (1, 1)
    np.testing.assert_allclose(got[:3], skip.numpy()[0])
    np.testing.assert_allclose(got[3:], want_up, rtol=1e-5, atol=1e-6)


def test_unet_overfits_one_tiny_batch():
    torch.manual_seed(0)
    m = SmokeUNet(base=4).train()
    x = torch.randn(2, 12, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:20, 10:26] = 1.0
    x[:, :2] += 2.0 * mask[:, 0:1].expand(-1, 2, -1, -1)  # visible plume
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(m(x), mask)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


# -- normalisation ---------------------------------------------------------------------
def test_published_constants():
    assert BANET.bands == ("red", "nir", "mir", "frp")
    assert BANET.mean == (0.2349, 0.3548, 0.1128, 0.0016)
    assert BANET.std == (0.1879, 0.1660, 0.0547, 0.0776)
    assert BANET.nan_fill == 0.0
    assert len(S2_FILE_BANDS) == 13
    assert SMOKE_S2.bands == tuple(b for b in S2_FILE_BANDS if b != "B10")
    assert SMOKE_S2.n_channels == 12
    assert SMOKE_S2.mean[0] == 809.2 and SMOKE_S2.mean[-1] == 1460.42
    assert SMOKE_S2.std[0] == 441.8 and SMOKE_S2.std[-1] == 674.8
    assert default_normalization("banet") is BANET
    assert default_normalization("smoke_unet") is SMOKE_S2
    assert default_normalization("nope") is None


def test_normalization_apply_matches_numpy_and_fills_nan_first():
    x = np.random.default_rng(0).uniform(0, 1, (2, 4, 3, 5, 5)).astype(np.float32)
    x[0, 1, 2, 3, 4] = np.nan
    got = BANET.apply(torch.from_numpy(x), channel_dim=1).numpy()
    mean = np.array(BANET.mean, np.float32)[None, :, None, None, None]
    std = np.array(BANET.std, np.float32)[None, :, None, None, None]
    want = (np.nan_to_num(x, nan=0.0) - mean) / std
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[0, 1, 2, 3, 4] == pytest.approx(-BANET.mean[1] / BANET.std[1])


def test_normalization_round_trip_and_validation():
    d = SMOKE_S2.to_dict()
    assert d["bands"][10] == "B11" and isinstance(d["mean"], list)
    assert Normalization.from_dict(d) == SMOKE_S2
    with pytest.raises(ValueError, match="3 bands"):
        Normalization("bad", ("a", "b", "c"), (0.0,), (1.0,))
    with pytest.raises(ValueError, match="std"):
        Normalization("bad", ("a",), (0.0,), (0.0,))
    with pytest.raises(ValueError, match=re.escape("expects 12 channels")):
        SMOKE_S2.apply(torch.zeros(1, 13, 4, 4))
