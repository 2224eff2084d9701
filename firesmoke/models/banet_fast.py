"""Fast, eval-only BA-Net forward (:func:`prepare_for_inference`).

In eval mode a per-day batch norm is one affine map per channel, so it folds into the
convolution before it (scale -> weight, shift -> a new bias). The fast module then keeps
activations **time-major**, as contiguous ``(T, B, H, W, C)`` tensors, for these reasons:

* every ``(1, k, k)`` convolution is a 2-D channels-last convolution over ``T*B`` images
  and every ``(kt, 1, 1)`` one a 2-D channels-last convolution over one
  ``(T, B*H*W)`` image: no copy of any input or output;
* the per-pixel LSTM reads ``(T, B*H*W, C)``, which is exactly how the first block's
  output lies in memory: one LSTM call for the whole batch (no per-sample loop, no copy);
* selecting days (the decoder computes only the days the kept outputs depend on) is a
  contiguous slice of the first axis;
* transposed convolutions (kernel == stride) are matrix products (with the bias and
  ReLU in the matmul's epilogue on CUDA) whose columns are scattered to the finer grid
  in one pass straight into the preallocated skip-concatenation buffer.

The weights are kept in the dtype and memory layout their kernels read: under CUDA
autocast (bf16 / fp16) the module runs natively in that dtype with weights cast once and
cached, and autocast itself is switched off inside (no per-call weight casts). The first
7 x 7 convolution on 4 input channels runs, on CUDA, as a row unfold into 28 (+4 zero)
channels and a 1 x 7 convolution that tensor cores handle well. In float32 on CUDA the
forward runs with TF32 off (:func:`firesmoke.models.precision.no_tf32`) unless
``allow_tf32`` is set, so that it agrees with the plain module to float32 rounding.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import nn

from firesmoke.errors import InputError
from firesmoke.models.banet import BANet, _check_days
from firesmoke.models.banet_ops import FoldedConv, FoldedUpConv, Kernels
from firesmoke.models.lstm_triton import lstm_forward, triton_available
from firesmoke.models.precision import no_tf32

__all__ = ["FastBANet", "prepare_for_inference"]

log = logging.getLogger(__name__)

_LOW = (torch.bfloat16, torch.float16)


def _relu_into(src: torch.Tensor, dst: torch.Tensor) -> None:
    """``dst[...] = relu(src)`` in one pass (``dst`` is a strided view)."""
    if torch.compiler.is_compiling():  # no strided out= under dynamo; inductor fuses this
        dst.copy_(torch.relu(src))
    else:
        torch.clamp_min(src, 0, out=dst)


def _concat_buffer(
    skip: torch.Tensor, up_ch: int, grid: tuple[int, int, int], factor: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-major buffer ``(t, B, h, w, Cskip + up_ch)`` holding ``skip``, and its up part.

    The up part is returned as an 8-D view ``(t/ft, ft, B, h/fh, fh, w/fw, fw, up_ch)`` so
    that a transposed-convolution output can be scattered into it in one pass.
    """
    b = skip.shape[1]
    cs = skip.shape[-1]
    t, h, w = grid
    buf = torch.empty((t, b, h, w, cs + up_ch), dtype=skip.dtype, device=skip.device)
    buf[..., :cs].copy_(skip)
    ft, fh, fw = factor
    dst = buf[..., cs:].unflatten(0, (t // ft, ft)).unflatten(3, (h // fh, fh))
    return buf, dst.unflatten(5, (w // fw, fw))


class FastBANet(nn.Module):
    """Eval-only BA-Net equal to ``BANet.eval()`` up to float rounding, but faster.

    Built by :func:`prepare_for_inference`; holds folded copies of the weights as
    buffers (move it with ``.to(device)``). ``forward`` always runs under
    :func:`torch.inference_mode`.

    Attributes
    ----------
    use_fusion
        Use fused convolution / matmul + bias + ReLU kernels where available.
    first_conv
        ``"auto"`` (unfold on CUDA, direct on CPU), ``"direct"`` or ``"unfold"``.
    allow_tf32
        Let float32 CUDA forwards use TF32 (faster, not reference-exact).
    max_elements
        Batches whose largest intermediate tensor would exceed this many elements run
        in equal sub-batches: beyond 2**31 - 1 elements cuDNN falls back to 64-bit
        indexing kernels about 60 times slower (measured on an H200).
    fused_lstm
        On CUDA in bf16 / fp16, run the pixel LSTM with the fused Triton kernel of
        :mod:`firesmoke.models.lstm_triton` when Triton is installed (else cuDNN).
    """

    #: ``forward`` takes ``days=`` and computes only what those days need
    supports_days = True

    def __init__(self, model: BANet, channels_last: bool = True) -> None:
        super().__init__()
        self.in_ch = model.in_ch
        self.n_classes = model.n_classes
        self.sequence_len = model.sequence_len
        self.channels_last = channels_last
        self.space = nn.ModuleList()
        self.time = nn.ModuleList()
        for blk in (model.stconv1, model.stconv2, model.stconv3, model.stconv4, model.stconv5):
            sc, tc = blk.stconv[0], blk.stconv[1]
            self.space.append(FoldedConv.from_block(sc.conv[0], sc.conv[1]))
            self.time.append(FoldedConv.from_block(tc.timeConv, tc.bn))
        src = model.stconv1.stconv[1].timeLstm.lstm
        # same weights, sequence-first layout: (T, pixels, C) is how time-major data lies
        self.lstm = nn.LSTM(src.input_size, src.hidden_size, num_layers=1).to(
            device=src.weight_ih_l0.device, dtype=src.weight_ih_l0.dtype
        )
        self.lstm.load_state_dict(src.state_dict())
        self.bottom = FoldedConv.from_block(model.stconv6.conv[0], model.stconv6.conv[1])
        self.up6 = FoldedUpConv(model.ustconv6.conv[0], model.ustconv6.conv[1])
        self.up_space = nn.ModuleList()
        self.up_time = nn.ModuleList()
        for st in (model.ustconv5, model.ustconv4, model.ustconv3, model.ustconv2):
            a, t = st.upstconv[0], st.upstconv[1]
            self.up_space.append(FoldedUpConv(a.conv[0], a.conv[1]))
            self.up_time.append(FoldedUpConv(t.conv[0], t.conv[1]))
        self.head = FoldedConv.from_block(model.conv3, model.bn)
        fc = model.final_conv
        self.final = FoldedConv(
            fc.weight.detach().clone(), fc.bias.detach().clone(), fc.stride, fc.padding, relu=False
        )
        self.use_fusion = True
        self.first_conv = "auto"
        self.allow_tf32 = False
        self.max_elements = 2**31 - 1
        self.fused_lstm = True
        self._compiled = None
        self._lstms: dict = {}
        self.eval()

    def _apply(self, fn, recurse=True):
        self._lstms = {}
        return super()._apply(fn, recurse)

    # -- entry -----------------------------------------------------------------------------
    def compute_dtype(self, x: torch.Tensor) -> torch.dtype:
        """The dtype the forward runs in: autocast's if enabled for ``x``'s device (bf16 /
        fp16), else the module's own (float32 unless converted)."""
        dev = x.device.type
        if dev in ("cuda", "cpu") and torch.is_autocast_enabled(dev):
            dt = torch.get_autocast_dtype(dev)
            if dt in _LOW:
                return dt
        return self.final.weight.dtype

    def forward(self, x: torch.Tensor, days: tuple[int, int] | None = None) -> torch.Tensor:
        """Logits ``(B, n_classes, T, H, W)``, or only days ``[d0, d1)`` with ``days``.

        With ``days`` the decoder (time-local but for the head's 3-day kernel) runs only
        on the days those outputs depend on: the same values, less work when a monthly
        product keeps half of its 64-day window. The encoder always runs whole (the LSTM
        and the strided time convolutions see the whole window). The result has the
        compute dtype (:meth:`compute_dtype`).
        """
        BANet.check_input(x, self.in_ch)
        keep = _check_days(days, x.shape[2])
        dtype = self.compute_dtype(x)
        exact = x.device.type == "cuda" and dtype == torch.float32 and not self.allow_tf32
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.inference_mode())
            if x.device.type in ("cuda", "cpu"):
                stack.enter_context(torch.autocast(x.device.type, enabled=False))
            if exact:
                stack.enter_context(no_tf32())
            if not self.channels_last:
                return self._forward_ncdhw(x.to(self.final.weight.dtype), keep)
            n = self.sub_batch(x.shape, self._lstm_kernel_applies(x, dtype))
            outs = [self._forward_tmajor(x[i : i + n], keep, dtype) for i in range(0, x.shape[0], n)]
            return outs[0] if len(outs) == 1 else torch.cat(outs)

    def sub_batch(self, shape: torch.Size, fused_lstm: bool = False) -> int:
        """Samples per pass so that no intermediate tensor exceeds ``max_elements``.

        The cuDNN LSTM holds the gates of every step (``4 * hidden`` channels); the
        fused kernel (``fused_lstm``) holds none, then the skip buffer is the largest.
        """
        t, h, w = shape[2:]
        widest = self.head.in_ch if fused_lstm else max(4 * self.lstm.hidden_size, self.head.in_ch)
        most = max(1, self.max_elements // (t * h * w * widest))
        passes = -(-shape[0] // most)
        return -(-shape[0] // passes)  # equal passes: 32 -> 16 + 16, not 31 + 1

    def _lstm_kernel_applies(self, x: torch.Tensor, dtype: torch.dtype) -> bool:
        return (self.fused_lstm and x.device.type == "cuda" and dtype in _LOW
                and triton_available())

    def _kernels(self, x: torch.Tensor, dtype: torch.dtype) -> Kernels:
        fusion = self.use_fusion and self._compiled is None
        return Kernels.select(x.device, dtype, fusion, self.first_conv)

    # -- NCDHW (folding only) ------------------------------------------------------------
    def _forward_ncdhw(self, x: torch.Tensor, keep: tuple[int, int]) -> torch.Tensor:
        x = self.space[0].ncdhw(x)
        b, c, t, h, w = x.shape
        seq = x.permute(2, 0, 3, 4, 1).reshape(t, b * h * w, c)
        x = self._lstm_for(x.device, x.dtype)(seq)[0]
        x = x.view(t, b, h, w, -1).permute(1, 4, 0, 2, 3).contiguous()
        x = self.time[0].ncdhw(x)
        skips = [x]
        for sc, tc in zip(self.space[1:], self.time[1:], strict=True):
            x = tc.ncdhw(sc.ncdhw(x))
            skips.append(x)
        up = self.up6.ncdhw(self.bottom.ncdhw(x))
        for us, ut, skip in zip(self.up_space, self.up_time, skips[:0:-1], strict=True):
            up = ut.ncdhw(us.ncdhw(torch.cat((skip, up), dim=1)))
        up = self.head.ncdhw(torch.cat((skips[0], up), dim=1))
        return self.final.ncdhw(up[:, :, keep[0] : keep[1]])

    # -- time-major ------------------------------------------------------------------------
    def _lstm_for(self, device: torch.device, dtype: torch.dtype) -> nn.LSTM:
        """The LSTM with weights in ``dtype`` on ``device`` (cached)."""
        key = (device, dtype)
        lstm = self._lstms.get(key)
        if lstm is None:
            # a fresh copy made outside inference mode: the module may have been built
            # inside it (the engine does), and cuDNN's weight flattening writes in place
            src = self.lstm
            with torch.inference_mode(False), torch.no_grad():
                lstm = nn.LSTM(src.input_size, src.hidden_size, num_layers=1)
                lstm = lstm.to(device=device, dtype=dtype)
                for name, p in lstm.named_parameters():
                    p.copy_(getattr(src, name))
                lstm.flatten_parameters()
            self._lstms[key] = lstm
        return lstm

    def _run_lstm(self, x: torch.Tensor) -> torch.Tensor:
        """The pixel LSTM on a time-major ``(T, B, H, W, C)`` tensor, one call."""
        t, b, h, w, c = x.shape
        seq = x.view(t, b * h * w, c)
        if self.fused_lstm and not torch.compiler.is_compiling():
            out = lstm_forward(self._lstm_for(x.device, x.dtype), seq)
            if out is not None:
                return out.view(t, b, h, w, -1)
        try:
            out = self._lstm_for(x.device, x.dtype)(seq)[0]
        except RuntimeError:
            if x.dtype == torch.float32:
                raise
            # no low-precision LSTM kernel here: run it in float32
            log.debug("LSTM in %s failed on %s; running it in float32", x.dtype, x.device)
            out = self._lstm_for(x.device, torch.float32)(seq.float())[0].to(x.dtype)
        return out.view(t, b, h, w, -1)

    def _forward_tmajor(
        self, x: torch.Tensor, keep: tuple[int, int], dtype: torch.dtype
    ) -> torch.Tensor:
        kern = self._kernels(x, dtype)
        if self._compiled is not None:
            pre, post = self._compiled
        else:
            pre, post = self._pre, self._post
        # the LSTM runs eagerly between two (optionally compiled) stages
        y = self._run_lstm(pre(x, dtype, kern))
        return post(y, x.shape, keep, kern)

    def _pre(self, x: torch.Tensor, dtype: torch.dtype, kern: Kernels) -> torch.Tensor:
        return self.space[0].first_tmajor(x, dtype, kern)

    def _post(
        self, x: torch.Tensor, shape: torch.Size, keep: tuple[int, int], kern: Kernels
    ) -> torch.Tensor:
        fused = kern.mode == "mkldnn" or kern.fused_linear
        x = self.time[0].tmajor(x, kern)
        skips = [x]
        for sc, tc in zip(self.space[1:], self.time[1:], strict=True):
            x = tc.tmajor(sc.tmajor(x, kern), kern)
            skips.append(x)
        x = self.bottom.tmajor(x, kern)
        # days each decoder level must produce: the kept days and the head's +-1 day,
        # halved (floor / ceil) per level, since every up step maps day t to 2t, 2t + 1
        t_full = shape[2]
        a0, a1 = max(keep[0] - 1, 0), min(keep[1] + 1, t_full)
        level = len(skips) - 1
        d0, d1 = a0 >> level, -(-a1 >> level)
        x = x[d0:d1]  # time-major: a contiguous slice
        t, b, h, w, c = x.shape
        co = self.up6.out_ch
        y = self.up6.gemm(x.reshape(-1, c), relu=fused, kern=kern)  # rows (t,b,h,w), cols (kh,kw,co)
        # skips are popped as they are copied into the concat buffers: bounded memory
        buf, dst = _concat_buffer(skips.pop()[d0:d1], co, (t, 2 * h, 2 * w), (1, 2, 2))
        # y (t, b, h, w, kt, kh, kw, co) -> dst (t, kt, b, h, kh, w, kw, co)
        self._scatter(y.view(t, b, h, w, 1, 2, 2, co).permute(0, 4, 1, 2, 5, 3, 6, 7), dst, fused)
        del x, y, dst
        for us, ut in zip(self.up_space, self.up_time, strict=True):
            # buf holds days [d0, d1) of this level; keep those the finer level needs
            n0, n1 = a0 >> level, -(-a1 >> level)
            buf = buf[n0 - d0 : n1 - d0]
            level -= 1
            d0, d1 = 2 * n0, 2 * n1
            t, b, h, w, c = buf.shape
            y1 = us.gemm(buf.reshape(-1, c), relu=True, kern=kern)  # rows (t,b,h,w), cols (kh,kw,c1)
            del buf
            y2 = ut.gemm(y1.view(-1, us.out_ch), relu=fused, kern=kern)  # cols (kt, co)
            del y1
            co = ut.out_ch
            buf, dst = _concat_buffer(skips.pop()[d0:d1], co, (2 * t, 2 * h, 2 * w), (2, 2, 2))
            # y2 (t, b, h, w, kh, kw, kt, co) -> dst (t, kt, b, h, kh, w, kw, co)
            self._scatter(
                y2.view(t, b, h, w, 2, 2, 2, co).permute(0, 6, 1, 2, 4, 3, 5, 7), dst, fused
            )
            del y2, dst
        # the head's 3-day kernel on days [a0, a1) (zero padding at their ends, which is
        # the real padding at the window ends); its first/last day are dropped when they
        # are only context
        y = self.head.tmajor(buf[a0 - d0 : a1 - d0], kern)
        del buf
        y = self.final.tmajor(y[keep[0] - a0 : keep[1] - a0], kern)  # (days, B, H, W, K)
        return y.permute(1, 4, 0, 2, 3).contiguous()

    @staticmethod
    def _scatter(src: torch.Tensor, dst: torch.Tensor, relu_done: bool) -> None:
        if relu_done:
            dst.copy_(src)
        else:
            _relu_into(src, dst)


def prepare_for_inference(
    model: BANet, compile: bool = False, channels_last: bool = True
) -> FastBANet:
    """Return a fast eval-only module computing the same logits as ``model.eval()``.

    Batch norms are folded into the convolutions before them (a per-day batch norm in
    eval mode is a per-channel affine map), activations stay time-major and
    channels-last (``channels_last=True``, see :mod:`firesmoke.models.banet_fast`),
    transposed convolutions become matrix products scattered onto the finer grid, and
    the whole forward runs under :func:`torch.inference_mode`. Fused convolution /
    matmul + bias + ReLU kernels are used where available (oneDNN on CPU, cuDNN and
    cuBLASLt on CUDA). Under CUDA autocast the module runs natively in the autocast
    dtype; in float32 on CUDA it runs with TF32 off.

    Parameters
    ----------
    model
        A :class:`BANet`; its weights are copied (folded), the original is untouched.
    compile
        Also compile the two stages around the LSTM with :func:`torch.compile` (slow
        first call; plain kernels, which the compiler fuses).
    channels_last
        Keep activations time-major channels-last; ``False`` keeps NCDHW tensors and
        only folds the batch norms.

    Returns
    -------
    FastBANet
        A module on the same device and dtype as ``model``, in eval mode.
    """
    fast = FastBANet(model, channels_last=channels_last)
    if compile:
        if not channels_last:
            raise InputError("compile=True needs channels_last=True")
        fast.use_fusion = False  # let the compiler see plain aten ops
        fast._compiled = tuple(torch.compile(f, dynamic=False) for f in (fast._pre, fast._post))
    return fast
