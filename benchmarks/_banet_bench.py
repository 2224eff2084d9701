"""BA-Net pieces shared by the benchmarks: random-weight models and the reference-style loop.

Imported by :mod:`benchmarks.gpu_bench` (which must run standalone on a bare GPU machine)
and :mod:`benchmarks.bench_inference`: only numpy at module level; torch, pandas and
firesmoke are imported inside the functions.
"""

from __future__ import annotations

import numpy as np


def random_banet(seed: int):
    """A BA-Net with random weights and non-trivial batch-norm statistics."""
    import torch
    from torch import nn

    from firesmoke.models.banet import BANet

    torch.manual_seed(seed)
    model = BANet()
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.3, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
        model.final_conv.bias.fill_(-4.0)  # daily probabilities well below 1
    return model.eval()


def reference_loop(x: np.ndarray, paths: list[str], window, device: str = "cpu",
                   tile: int = 128, step: int = 100,
                   threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Reference-style monthly product of one window input ``(4, 64, H, W)``.

    Tiles one at a time (batch 1), fp32, the plain module, the models in turn with their
    weights loaded for the call: NaN -> 0 (a missing day is all zeros), zero padding
    beyond the region, sigmoid, overlaps averaged, ensemble mean; then confidence =
    min(sum over the month's days, 1) and the true day of year of the argmax (the
    intended behaviour, not the reference's off-by-16-days bug).
    """
    import pandas as pd
    import torch

    from firesmoke.models.normalization import BANET
    from firesmoke.models.weights import load_weights

    _, nt, h, w = x.shape
    rows = np.arange(0, max(h - tile, 0) + step, step)[: -(-max(h - tile, 0) // step) + 1]
    cols = np.arange(0, max(w - tile, 0) + step, step)[: -(-max(w - tile, 0) // step) + 1]
    ph, pw = rows[-1] + tile, cols[-1] + tile
    padded = np.zeros((4, nt, ph, pw), np.float32)
    padded[:, :, :h, :w] = np.nan_to_num(x, nan=0.0)
    mean = np.asarray(BANET.mean, np.float32).reshape(4, 1, 1, 1)
    std = np.asarray(BANET.std, np.float32).reshape(4, 1, 1, 1)
    ensemble = np.zeros((nt, ph, pw), np.float64)
    for path in paths:
        model, _ = load_weights(path)
        model = model.to(device).eval()
        acc = np.zeros((nt, ph, pw), np.float64)
        count = np.zeros((ph, pw), np.float64)
        for r in rows:
            for c in cols:
                t = (padded[:, :, r : r + tile, c : c + tile] - mean) / std
                with torch.no_grad():
                    p = torch.sigmoid(model(torch.from_numpy(t[None]).to(device)))
                acc[:, r : r + tile, c : c + tile] += p.cpu().numpy()[0, 0]
                count[r : r + tile, c : c + tile] += 1
        ensemble += acc / count
    prob = (ensemble / len(paths))[:, :h, :w]
    p = prob[window.keep_slice]
    conf = np.minimum(p.sum(axis=0), 1.0).astype(np.float32)
    date = (pd.Timestamp(window.keep_start).dayofyear + np.argmax(p, axis=0)).astype(np.int16)
    date[conf < threshold] = 0
    return conf, date
