"""Save and load model weights safely, with their metadata and a checksum.

File format (``.pt``, readable with ``torch.load(path, weights_only=True)``)::

    {"format": "firesmoke-weights", "format_version": 1,
     "metadata": {architecture, config, bands, normalization, tile_size,
                  sequence_length, training_data, metrics, package_version,
                  created, dtype, state_dict_sha256, ...},
     "state_dict": {name: tensor},
     "state_dict_sha256": "<hex>"}

The checksum is a SHA-256 over the state dict's names, dtypes, shapes and raw bytes in
sorted-name order, so it identifies the weights whatever the container, and it is what
products record as provenance. A ``<file>.sha256`` sidecar (``sha256sum`` format) of the
whole file is written too and checked on load when present.

Loading never unpickles code: only ``torch.load(..., weights_only=True)`` is used and a
file it refuses is reported as :class:`~firesmoke.errors.WeightsError`. Plain state dicts
of the original software (``torch.save(model.state_dict())``) load as well, with the
architecture given or recognised from the parameter names.

Named weights (``load_weights("banet-demo")``) are searched in ``$FIRESMOKE_WEIGHTS``
(``os.pathsep``-separated folders) or else ``~/.cache/firesmoke`` (``$XDG_CACHE_HOME``
honoured), then in the package folder ``firesmoke/data/weights/``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from firesmoke._version import __version__
from firesmoke.errors import WeightsError
from firesmoke.models.banet import BANet
from firesmoke.models.banet_fast import FastBANet
from firesmoke.models.normalization import default_normalization
from firesmoke.models.resnet import SmokeResNet, smoke_resnet50
from firesmoke.models.unet import SmokeUNet
from firesmoke.models.weights_checks import (
    CONFIG_BOUNDS,
    blocked_global,
    check_config,
    check_metadata,
    check_shapes,
    check_storage,
    default_config,
    unpickler_reason,
)

__all__ = [
    "ARCHITECTURES",
    "CONFIG_BOUNDS",
    "FORMAT",
    "PACKAGE_WEIGHTS_DIR",
    "architecture_of",
    "available_weights",
    "find_weights",
    "load_weights",
    "save_weights",
    "state_dict_sha256",
    "weights_dirs",
]

logger = logging.getLogger(__name__)

FORMAT = "firesmoke-weights"
FORMAT_VERSION = 1
SUFFIXES = (".pt", ".pth")
PACKAGE_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "data" / "weights"
"""Weights shipped with the package (small models trained on synthetic data)."""

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "banet": BANet,
    "smoke_resnet50": smoke_resnet50,
    "smoke_unet": SmokeUNet,
}
"""Architecture name -> constructor taking the saved ``config`` as keyword arguments."""

_TRAIN_HINT = {
    "banet": "firesmoke train banet ...",
    "smoke_resnet50": "firesmoke train smoke-classifier ...",
    "smoke_unet": "firesmoke train smoke-segmenter ...",
}
_DEFAULT_TILE = {"banet": 128, "smoke_resnet50": 120, "smoke_unet": 120}


# -- checksums -------------------------------------------------------------------------
def state_dict_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of a state dict: names, dtypes, shapes and bytes, sorted by name.

    Independent of device, of dict order and of the file container.
    """
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"state dict entry {name!r} is not a tensor ({type(t).__name__})")
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}\0{str(t.dtype).removeprefix('torch.')}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


# -- architectures ---------------------------------------------------------------------
def architecture_of(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """Architecture name and constructor arguments of a firesmoke model."""
    if isinstance(model, FastBANet):
        raise TypeError("save the BANet the fast module was prepared from, not the FastBANet")
    if isinstance(model, BANet):
        return "banet", model.config
    if isinstance(model, SmokeResNet):
        return "smoke_resnet50", model.config
    if isinstance(model, SmokeUNet):
        return "smoke_unet", model.config
    raise TypeError(f"unknown model type {type(model).__name__}; known: {sorted(ARCHITECTURES)}")


def _guess_architecture(sd: Mapping[str, torch.Tensor]) -> str | None:
    if "stconv1.stconv.0.conv.0.weight" in sd:
        return "banet"
    if "inc.double_conv.0.weight" in sd:
        return "smoke_unet"
    if "layer1.0.conv1.weight" in sd and "fc.weight" in sd:
        return "smoke_resnet50"
    return None


def _infer_config(arch: str, sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor arguments readable from the tensor shapes of a plain state dict."""
    if arch == "banet":
        return {
            "in_ch": sd["stconv1.stconv.0.conv.0.weight"].shape[1],
            "n_classes": sd["final_conv.weight"].shape[0],
        }
    if arch == "smoke_unet":
        return {
            "in_ch": sd["inc.double_conv.0.weight"].shape[1],
            "base": sd["inc.double_conv.0.weight"].shape[0],
            "n_classes": sd["outc.conv.weight"].shape[0],
            "bilinear": "up1.up.weight" not in sd,
        }
    if arch == "smoke_resnet50":
        layers = []
        i = 1
        while f"layer{i}.0.conv1.weight" in sd:
            pattern = re.compile(rf"^layer{i}\.(\d+)\.")
            layers.append(1 + max(int(m.group(1)) for k in sd if (m := pattern.match(k))))
            i += 1
        w = sd["conv1.weight"]
        return {
            "in_ch": w.shape[1],
            "width": w.shape[0],
            "stem_kernel": w.shape[2],
            "layers": layers,
            "n_outputs": sd["fc.weight"].shape[0],
        }
    return {}


# -- metadata --------------------------------------------------------------------------
def _plain(obj: Any, where: str = "metadata") -> Any:
    """Convert metadata to JSON-like builtins (loadable with ``weights_only=True``)."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "to_dict"):
        return _plain(obj.to_dict(), where)
    if isinstance(obj, _dt.datetime | _dt.date):
        return obj.isoformat()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalar
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{where} of type {type(obj).__name__} cannot be stored in weights metadata")


def _default_metadata(arch: str, config: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"tile_size": _DEFAULT_TILE.get(arch), "training_data": "unspecified"}
    norm = default_normalization(arch)
    if norm is not None:
        meta["bands"] = list(norm.bands)
        meta["normalization"] = norm.to_dict()
    if arch == "banet":
        meta["sequence_length"] = int(config.get("sequence_len", 64))
    meta["metrics"] = {}
    return meta


# -- saving ----------------------------------------------------------------------------
def save_weights(
    model: nn.Module,
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
    *,
    half: bool = False,
    sidecar: bool = True,
) -> str:
    """Write a model's weights with their metadata and checksum.

    Parameters
    ----------
    model
        A :class:`~firesmoke.models.banet.BANet`, :class:`~firesmoke.models.resnet.SmokeResNet`
        or :class:`~firesmoke.models.unet.SmokeUNet`.
    path
        Output file (``.pt`` by convention); written atomically.
    metadata
        Free metadata: ``bands``, ``normalization`` (dict or
        :class:`~firesmoke.models.normalization.Normalization`), ``tile_size``,
        ``sequence_length``, ``training_data``, ``metrics``, ... Missing keys among
        these get the architecture's published defaults. Values must be JSON-like
        (numpy/torch scalars, tuples, paths and dates are converted).
    half
        Store floating-point tensors as float16 (about half the size); loading
        upcasts to float32. The checksum covers the stored (float16) tensors.
    sidecar
        Also write ``<path>.sha256`` with the SHA-256 of the whole file.

    Returns
    -------
    str
        The state-dict SHA-256 stored in the file (the weights' identity).
    """
    path = Path(path)
    arch, config = architecture_of(model)
    state = {}
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu")
        if half and t.is_floating_point():
            t = t.to(torch.float16)
        state[name] = t.contiguous()
    sha = state_dict_sha256(state)
    try:
        meta = _default_metadata(arch, config)
        meta.update(_plain(dict(metadata or {})))
    except TypeError as exc:
        raise WeightsError(f"cannot save weights: {exc}", path=path) from exc
    meta.update(
        architecture=arch,
        config=_plain(config),
        package_version=__version__,
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        dtype="float16" if half else "float32",
        state_dict_sha256=sha,
        n_parameters=int(sum(p.numel() for p in model.parameters())),
    )
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata": meta,
        "state_dict": state,
        "state_dict_sha256": sha,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
        if sidecar:
            _sidecar(path).write_text(f"{_file_sha256(path)}  {path.name}\n")
    except OSError as exc:
        raise WeightsError(f"cannot write weights: {exc}", path=path) from exc
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("saved %s weights to %s (sha256 %s)", arch, path, sha[:12])
    return sha


# -- finding ---------------------------------------------------------------------------
def weights_dirs() -> list[Path]:
    """Folders searched for named weights, in order."""
    env = os.environ.get("FIRESMOKE_WEIGHTS")
    if env:
        user = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        user = [Path(cache) / "firesmoke"]
    return [*user, PACKAGE_WEIGHTS_DIR]


def available_weights() -> dict[str, Path]:
    """Named weights that :func:`find_weights` can resolve (first folder wins)."""
    found: dict[str, Path] = {}
    for d in weights_dirs():
        if d.is_dir():
            for p in sorted(d.iterdir()):
                if p.suffix in SUFFIXES and p.is_file():
                    found.setdefault(p.stem, p)
    return found


def find_weights(path_or_name: str | os.PathLike[str]) -> Path:
    """Resolve a weights file path or a weights name to an existing file.

    A path to an existing file is returned as is. Otherwise a bare name (no folder
    part) is looked up as ``name``, ``name.pt`` and ``name.pth`` in :func:`weights_dirs`.

    Raises
    ------
    WeightsError
        If nothing is found; the message lists every place looked at and how to get
        or train weights.
    """
    p = Path(path_or_name).expanduser()
    if p.is_file():
        return p
    text = os.fspath(path_or_name)
    if p.is_dir():
        raise WeightsError("is a folder, not a weights file", path=p)
    if isinstance(path_or_name, os.PathLike) or os.sep in text or "/" in text:
        raise WeightsError("weights file not found", path=p)
    tried = []
    for d in weights_dirs():
        for cand in (text, *(text + s for s in SUFFIXES if not text.endswith(s))):
            tried.append(d / cand)
            if (d / cand).is_file():
                return d / cand
    stem = text.removesuffix(".pt").removesuffix(".pth")
    arch = next((a for a in _TRAIN_HINT if stem.replace("-", "_").startswith(a)), None)
    hints = [_TRAIN_HINT[arch]] if arch else list(_TRAIN_HINT.values())
    raise WeightsError(
        f"no weights named {text!r}. Looked in: "
        + ", ".join(str(d) for d in weights_dirs())
        + f" (as {', '.join(repr(t.name) for t in tried[:3])}). Put a weights file in one of "
        "these folders (set FIRESMOKE_WEIGHTS to use another folder), pass the file's path, "
        "or train weights with `" + "` or `".join(hints) + "`.",
        path=text,
    )


# -- loading ---------------------------------------------------------------------------
def _safe_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into WeightsError."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as exc:
        raise WeightsError(f"cannot read weights file: {exc}", path=path) from exc
    if not zipfile.is_zipfile(path):
        if head == b"PK":
            raise WeightsError("truncated or corrupt weights file (incomplete zip)", path=path)
        if not head.startswith(b"\x80"):  # nor a legacy pickle stream
            raise WeightsError("corrupt or not a PyTorch weights file", path=path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = unpickler_reason(exc)
        blocked = blocked_global(exc)
        if blocked is not None:
            msg = (
                f"refused: the file refers to the Python global {blocked!r} (possible code); "
                "weights files may hold only tensors and plain data, so firesmoke will not load it"
            )
        else:
            msg = f"refused: corrupt or unsupported pickle data ({reason})"
        raise WeightsError(msg, path=path) from exc
    except MemoryError as exc:  # storages larger than the memory left: never a raw error
        raise WeightsError("refused: the file's tensors do not fit in memory", path=path) from exc
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"truncated or corrupt weights file: {first}", path=path) from exc


def _is_tensor_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _raw_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a plain checkpoint (bare, or under ``model``/``state_dict``)."""
    sd = obj
    if not _is_tensor_dict(sd) and isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if _is_tensor_dict(obj.get(key)):
                sd = obj[key]
                break
    if not _is_tensor_dict(sd):
        raise WeightsError("not a firesmoke weights file nor a state dict", path=path)
    sd = dict(sd)
    if all(k.startswith("module.") for k in sd):
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
    return sd


def load_weights(
    path_or_name: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    expected_sha256: str | None = None,
    *,
    architecture: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Build a model from a weights file (or name) and load its weights strictly.

    Parameters
    ----------
    path_or_name
        A file path, or a name resolved by :func:`find_weights`.
    map_location
        Device the returned model is moved to.
    expected_sha256
        If given, the state-dict SHA-256 the weights must have.
    architecture
        Architecture name (see :data:`ARCHITECTURES`) for plain state dicts; guessed
        from the parameter names when omitted. For firesmoke files it must agree with
        the file.
    config
        Constructor arguments for plain state dicts, overriding those read from the
        tensor shapes (e.g. ``{"sequence_len": 32}``).

    Returns
    -------
    model, metadata
        The model in eval mode, float32, on ``map_location``; the metadata dict with
        ``sha256`` (state dict) and ``path`` added.

    Raises
    ------
    WeightsError
        Missing file or name, file refused by ``weights_only`` loading, truncated or
        corrupt file, checksum mismatch (stored, sidecar or ``expected_sha256``),
        unknown architecture or state dict not matching it.

    Examples
    --------
    >>> from firesmoke import load_weights
    >>> model, meta = load_weights("banet_synthetic")   # shipped: trained on synthetic data only
    >>> type(model).__name__, meta["architecture"]
    ('BANet', 'banet')
    """
    path = find_weights(path_or_name)
    side = _sidecar(path)
    if side.is_file():
        fields = side.read_text().split()
        want = fields[0].lower() if fields else ""
        got = _file_sha256(path)
        if want != got:
            raise WeightsError(
                f"file SHA-256 {got} does not match its sidecar {side.name} ({want}); "
                "the file was modified or damaged",
                path=path,
            )
    obj = _safe_load(path)
    stored_sha = None
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        meta = obj.get("metadata")
        sd = obj.get("state_dict")
        if not isinstance(meta, Mapping) or not _is_tensor_dict(sd):
            raise WeightsError("malformed firesmoke weights file (metadata/state_dict)", path=path)
        meta = dict(meta)
        arch = meta.get("architecture")
        if architecture is not None and architecture != arch:
            raise WeightsError(f"file holds {arch!r} weights, not {architecture!r}", path=path)
        cfg = meta.get("config") or {}
        if not isinstance(cfg, Mapping):
            raise WeightsError(f"malformed config in weights metadata ({type(cfg).__name__})", path=path)
        cfg = dict(cfg)
        stored_sha = obj.get("state_dict_sha256")
        if not isinstance(stored_sha, str):
            raise WeightsError("weights file has no state-dict checksum", path=path)
    else:
        sd = _raw_state_dict(obj, path)
        arch = architecture or _guess_architecture(sd)
        if arch is None:
            raise WeightsError(
                "cannot tell the architecture of this state dict; pass architecture= one of "
                f"{sorted(ARCHITECTURES)}",
                path=path,
            )
        try:
            cfg = _infer_config(arch, sd)
        except (KeyError, IndexError, ValueError):
            cfg = {}  # not this architecture: strict loading below says what is wrong
        meta = _default_metadata(arch, {**cfg, **dict(config or {})})
        meta.update(
            architecture=arch,
            source="plain state dict",
            dtype=str(next(iter(sd.values())).dtype).removeprefix("torch."),
        )
    if config:
        cfg.update(config)
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise WeightsError(
            f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}", path=path
        )
    # everything below reads metadata only; nothing is materialised before the hash
    check_storage(sd, path)  # stride-0 / overlapping views claiming more than the file holds
    cfg = check_config(arch, cfg, path)
    if stored_sha is not None:  # a firesmoke file: its metadata came from the file
        target = SmokeResNet if arch == "smoke_resnet50" else ARCHITECTURES[arch]
        check_metadata(meta, {**default_config(target), **cfg}, path)
    check_shapes(ARCHITECTURES[arch], arch, cfg, sd, path)  # on the meta device: no allocation
    sha = state_dict_sha256(sd)
    if stored_sha is not None and sha != stored_sha.lower():
        raise WeightsError(
            f"checksum mismatch: tensors hash to {sha}, file records {stored_sha}; "
            "the weights were modified or damaged",
            path=path,
        )
    if expected_sha256 is not None and sha != expected_sha256.lower():
        raise WeightsError(
            f"checksum mismatch: weights hash to {sha}, expected {expected_sha256}", path=path
        )
    try:
        model = ARCHITECTURES[arch](**cfg)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"cannot build {arch!r} from config {cfg}: {exc}", path=path) from exc
    sd32 = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    try:
        model.load_state_dict(sd32, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"weights do not fit the {arch!r} architecture: {exc}", path=path
        ) from exc
    model.eval().to(map_location)
    meta["config"] = dict(cfg)
    meta["sha256"] = sha
    meta["path"] = str(path)
    logger.info("loaded %s weights from %s (sha256 %s)", arch, path, sha[:12])
    return model, meta
