"""Weights files: metadata, checksums, safe loading, name resolution, raw state dicts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from firesmoke._version import __version__
from firesmoke.errors import WeightsError
from firesmoke.models import weights as W
from firesmoke.models.banet import BANet
from firesmoke.models.normalization import BANET, SMOKE_S2
from firesmoke.models.resnet import smoke_resnet50
from firesmoke.models.unet import SmokeUNet
from firesmoke.models.weights import (
    available_weights,
    find_weights,
    load_weights,
    save_weights,
    state_dict_sha256,
    weights_dirs,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny shapes: one intra-op thread is as fast and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _isolated_weights_dirs(monkeypatch, tmp_path):
    """Never look at the developer's real cache."""
    monkeypatch.setenv("FIRESMOKE_WEIGHTS", str(tmp_path / "user-weights"))


def _perturb_bn(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2, generator=g)
            m.num_batches_tracked.fill_(7)
    return model.eval()


class _SmallModels:
    """``small_models()[arch]`` -> (small model in eval mode, an input for it)."""

    def __getitem__(self, arch: str):
        torch.manual_seed(0)
        if arch == "banet":
            return _perturb_bn(BANet(sequence_len=32)), torch.randn(1, 4, 16, 32, 32)
        if arch == "smoke_resnet50":
            return _perturb_bn(smoke_resnet50(width=8)), torch.randn(2, 12, 40, 40)
        return _perturb_bn(SmokeUNet(base=4)), torch.randn(1, 12, 40, 40)


def small_models() -> _SmallModels:
    return _SmallModels()


def test_sha256_is_deterministic_and_content_based():
    sd = {"b": torch.arange(6, dtype=torch.float32).view(2, 3), "a": torch.tensor(3)}
    h = hashlib.sha256()
    for name in ("a", "b"):  # sorted names
        t = sd[name]
        h.update(f"{name}\0{str(t.dtype)[6:]}\0{tuple(t.shape)}\0".encode())
        h.update(t.numpy().tobytes())
    assert state_dict_sha256(sd) == h.hexdigest()
    reordered = {"a": sd["a"], "b": sd["b"].t().contiguous().t()}  # other order, strides
    assert state_dict_sha256(reordered) == state_dict_sha256(sd)
    changed = dict(sd, b=sd["b"] + 1e-7 * torch.ones(2, 3))
    assert state_dict_sha256(changed) != state_dict_sha256(sd)
    retyped = dict(sd, b=sd["b"].double())
    assert state_dict_sha256(retyped) != state_dict_sha256(sd)


@pytest.mark.parametrize("arch", ["banet", "smoke_resnet50", "smoke_unet"])
def test_round_trip(tmp_path, arch):
    model, x = small_models()[arch]
    path = tmp_path / f"{arch}.pt"
    meta_in = {
        "training_data": "synthetic scenario 3, 2019",
        "metrics": {"dice": np.float32(0.75), "epochs": 4},
        "tile_size": 96,
        "note": ("a", 1),
    }
    sha = save_weights(model, path, meta_in)
    assert sha == state_dict_sha256(model.state_dict())
    # the file is plain data for torch's safe loader
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "firesmoke-weights" and raw["state_dict_sha256"] == sha
    loaded, meta = load_weights(path, expected_sha256=sha)
    assert type(loaded) is type(model) and not loaded.training
    assert meta["architecture"] == arch
    assert meta["config"] == model.config
    assert meta["sha256"] == sha and meta["path"] == str(path)
    assert meta["package_version"] == __version__
    assert meta["training_data"] == "synthetic scenario 3, 2019"
    assert meta["metrics"] == {"dice": 0.75, "epochs": 4}
    assert meta["tile_size"] == 96 and meta["note"] == ["a", 1]
    assert meta["created"].startswith("20")
    norm = BANET if arch == "banet" else SMOKE_S2
    assert meta["bands"] == list(norm.bands)
    assert meta["normalization"]["mean"] == list(norm.mean)
    if arch == "banet":
        assert meta["sequence_length"] == 32
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    side = Path(str(path) + ".sha256").read_text().split()
    assert side == [hashlib.sha256(path.read_bytes()).hexdigest(), path.name]


def test_half_precision_copy(tmp_path):
    model, _ = small_models()["smoke_unet"]
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    save_weights(model, full)
    sha_half = save_weights(model, half, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    raw = torch.load(half, weights_only=True)
    assert raw["state_dict"]["inc.double_conv.0.weight"].dtype == torch.float16
    assert raw["state_dict"]["inc.double_conv.1.num_batches_tracked"].dtype == torch.int64
    loaded, meta = load_weights(half)
    assert meta["dtype"] == "float16" and meta["sha256"] == sha_half
    w = loaded.state_dict()["inc.double_conv.0.weight"]
    assert w.dtype == torch.float32
    ref = model.state_dict()["inc.double_conv.0.weight"]
    assert torch.equal(w, ref.half().float())
    assert (w - ref).abs().max() < 1e-3


def test_tampered_byte_is_refused(tmp_path):
    model, _ = small_models()["smoke_resnet50"]
    path = tmp_path / "m.pt"
    save_weights(model, path, sidecar=False)
    data = bytearray(path.read_bytes())
    # flip one byte inside the fc weights' stored bytes
    needle = model.state_dict()["layer4.2.conv3.weight"].numpy().tobytes()[:64]
    pos = bytes(data).find(needle)
    assert pos > 0
    data[pos + 10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum mismatch") as info:
        load_weights(path)
    assert str(path) in str(info.value)


def test_sidecar_mismatch_is_refused(tmp_path):
    model, _ = small_models()["smoke_unet"]
    path = tmp_path / "m.pt"
    save_weights(model, path)
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(WeightsError, match="sidecar"):
        load_weights(path)


def test_modified_tensor_with_stale_checksum_is_refused(tmp_path):
    model, _ = small_models()["smoke_unet"]
    path = tmp_path / "m.pt"
    save_weights(model, path, sidecar=False)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["outc.conv.bias"] += 1.0
    torch.save(payload, path)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_weights(path)


def test_expected_sha256_is_enforced(tmp_path):
    model, _ = small_models()["smoke_unet"]
    path = tmp_path / "m.pt"
    save_weights(model, path)
    with pytest.raises(WeightsError, match="expected"):
        load_weights(path, expected_sha256="0" * 64)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"conv.weight": torch.zeros(2), "payload": _Evil(marker)}, path)
    with pytest.raises(WeightsError, match=r"refused: .*possible code") as info:
        load_weights(path, architecture="banet")
    assert str(path) in str(info.value)
    assert not marker.exists()
    assert isinstance(info.value.__cause__, Exception)


def test_truncated_file_is_refused(tmp_path):
    model, _ = small_models()["smoke_unet"]
    path = tmp_path / "m.pt"
    save_weights(model, path, sidecar=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt") as info:
        load_weights(path)
    assert str(path) in str(info.value)


def test_garbage_and_non_state_dicts_are_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(WeightsError, match="corrupt"):
        load_weights(junk)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(WeightsError, match="not a firesmoke weights file"):
        load_weights(tensor)


def test_unknown_architecture_is_refused(tmp_path):
    model, _ = small_models()["smoke_unet"]
    path = tmp_path / "m.pt"
    save_weights(model, path, sidecar=False)
    payload = torch.load(path, weights_only=True)
    payload["metadata"]["architecture"] = "transformer9000"
    torch.save(payload, path)
    with pytest.raises(WeightsError, match="unknown architecture 'transformer9000'"):
        load_weights(path)


def test_architecture_argument_must_agree(tmp_path):
    model, _ = small_models()["smoke_unet"]
    path = tmp_path / "m.pt"
    save_weights(model, path)
    with pytest.raises(WeightsError, match="not 'banet'"):
        load_weights(path, architecture="banet")


def test_unserialisable_metadata_is_refused(tmp_path):
    model, _ = small_models()["smoke_unet"]
    with pytest.raises(WeightsError, match="object"):
        save_weights(model, tmp_path / "m.pt", {"callback": object()})
    assert not (tmp_path / "m.pt").exists()


def test_raw_reference_state_dicts_load(tmp_path):
    models = small_models()
    banet, x = models["banet"]
    raw = tmp_path / "banet_raw.pth"
    torch.save(banet.state_dict(), raw)
    loaded, meta = load_weights(raw, architecture="banet")
    assert meta["architecture"] == "banet" and meta["source"] == "plain state dict"
    assert meta["normalization"]["mean"] == list(BANET.mean)
    assert meta["sha256"] == state_dict_sha256(banet.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), banet(x), rtol=0, atol=0)
    # recognised without the hint, wrapped in a checkpoint dict, with DataParallel names
    unet, _ = models["smoke_unet"]
    wrapped = tmp_path / "unet_ckpt.pt"
    torch.save({"model": {f"module.{k}": v for k, v in unet.state_dict().items()}}, wrapped)
    loaded, meta = load_weights(wrapped)
    assert isinstance(loaded, SmokeUNet) and meta["config"]["base"] == 4
    resnet, xr = models["smoke_resnet50"]
    raw_r = tmp_path / "resnet.pt"
    torch.save(resnet.state_dict(), raw_r)
    loaded, meta = load_weights(raw_r)
    assert meta["config"]["width"] == 8 and meta["config"]["layers"] == [3, 4, 6, 3]
    with torch.no_grad():
        torch.testing.assert_close(loaded(xr), resnet(xr), rtol=0, atol=0)


def test_raw_state_dict_of_wrong_architecture_is_refused(tmp_path):
    unet, _ = small_models()["smoke_unet"]
    raw = tmp_path / "unet.pth"
    torch.save(unet.state_dict(), raw)
    with pytest.raises(WeightsError, match="do not fit the 'banet'"):
        load_weights(raw, architecture="banet")
    anonymous = tmp_path / "anon.pth"
    torch.save({"w": torch.zeros(2)}, anonymous)
    with pytest.raises(WeightsError, match="cannot tell the architecture"):
        load_weights(anonymous)


def test_named_weights_from_env_folder(tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    monkeypatch.setenv("FIRESMOKE_WEIGHTS", str(folder))
    model, _ = small_models()["smoke_unet"]
    sha = save_weights(model, folder / "unet-demo.pt")
    assert weights_dirs()[0] == folder
    assert find_weights("unet-demo") == folder / "unet-demo.pt"
    assert available_weights()["unet-demo"] == folder / "unet-demo.pt"
    loaded, meta = load_weights("unet-demo")
    assert meta["sha256"] == sha and isinstance(loaded, SmokeUNet)


def test_default_user_folder_is_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("FIRESMOKE_WEIGHTS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert weights_dirs() == [tmp_path / "cache" / "firesmoke", W.PACKAGE_WEIGHTS_DIR]
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights_dirs()[0] == tmp_path / "home" / ".cache" / "firesmoke"


def test_package_folder_is_searched_after_user_folder(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    monkeypatch.setattr(W, "PACKAGE_WEIGHTS_DIR", pkg)
    model, _ = small_models()["smoke_unet"]
    save_weights(model, pkg / "shipped.pt")
    assert find_weights("shipped") == pkg / "shipped.pt"
    user = Path(weights_dirs()[0])
    save_weights(model, user / "shipped.pt")
    assert find_weights("shipped") == user / "shipped.pt"


def test_missing_name_lists_every_folder_and_how_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "FIRESMOKE_WEIGHTS", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    )
    with pytest.raises(WeightsError) as info:
        load_weights("banet-v9")
    msg = str(info.value)
    assert "banet-v9" in msg
    for folder in (tmp_path / "a", tmp_path / "b", W.PACKAGE_WEIGHTS_DIR):
        assert str(folder) in msg
    assert "FIRESMOKE_WEIGHTS" in msg and "firesmoke train banet" in msg


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "nope.pt")
    with pytest.raises(WeightsError, match="folder"):
        load_weights(tmp_path)


def test_fast_module_cannot_be_saved(tmp_path):
    from firesmoke.models.banet_fast import prepare_for_inference

    fast = prepare_for_inference(BANet().eval())
    with pytest.raises(TypeError, match="FastBANet"):
        save_weights(fast, tmp_path / "fast.pt")


# -- hostile files (issue 14, item 6) ----------------------------------------------------
class _SystemCall:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.parametrize("payload", [_SystemCall, _Evil])
def test_code_refusal_names_the_global_and_gives_no_unsafe_advice(tmp_path, payload):
    """torch's own refusal text suggests weights_only=False; ours names the global instead."""
    path = tmp_path / "evil.pt"
    obj = payload() if payload is _SystemCall else payload(tmp_path / "pwned")
    torch.save({"conv.weight": torch.zeros(2), "payload": obj}, path)
    with pytest.raises(WeightsError) as info:
        load_weights(path, architecture="banet")
    text = str(info.value)
    want = "posix.system" if payload is _SystemCall else "getattr"  # Path.touch pickles as getattr
    assert want in text and str(path) in text
    assert "weights_only" not in text and "trust" not in text.lower()
    # the cause still carries torch's message, so the name was parsed from it
    assert want in str(info.value.__cause__)


def _rewrite_config(tmp_path, arch, **changes):
    model, _ = small_models()[arch]
    path = tmp_path / f"{arch}.pt"
    save_weights(model, path, sidecar=False)
    payload = torch.load(path, weights_only=True)
    payload["metadata"]["config"].update(changes)
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    ("arch", "changes", "match"),
    [
        ("smoke_unet", {"base": 6000}, r"base=6000 refused: must be an integer in \[1, 1024\]"),
        ("smoke_unet", {"base": -4}, r"base=-4 refused"),
        ("smoke_unet", {"base": 2.5}, r"base=2.5 refused"),
        ("smoke_unet", {"bilinear": "yes"}, r"bilinear='yes' refused"),
        ("smoke_unet", {"crs": 1}, r"unknown 'smoke_unet' config key 'crs'"),
        ("banet", {"sequence_len": 10**9}, r"sequence_len=1000000000 refused"),
        ("smoke_resnet50", {"layers": [3] * 1000}, r"layers=.* refused: must be a list"),
    ],
)
def test_hostile_configs_are_refused_before_allocation(tmp_path, arch, changes, match):
    path = _rewrite_config(tmp_path, arch, **changes)
    built = []
    original = W.ARCHITECTURES[arch]
    W.ARCHITECTURES[arch] = lambda **kw: built.append(kw) or original(**kw)
    try:
        with pytest.raises(WeightsError, match=match) as info:
            load_weights(path)
    finally:
        W.ARCHITECTURES[arch] = original
    assert str(path) in str(info.value)
    assert built == []  # refused before any module (not even a meta-device one) was built


def test_in_bounds_config_that_does_not_fit_the_tensors_is_refused_on_the_meta_device(tmp_path):
    """base=512 is allowed but the file holds a small U-Net: refused from shapes, no real build."""
    path = _rewrite_config(tmp_path, "smoke_unet", base=512)
    devices = []
    original = W.ARCHITECTURES["smoke_unet"]

    def spy(**kw):
        model = original(**kw)
        devices.append(next(model.parameters()).device.type)
        return model

    W.ARCHITECTURES["smoke_unet"] = spy
    try:
        with pytest.raises(WeightsError, match=r"do not fit the 'smoke_unet'.*inc\.double_conv\.0\.weight is"):
            load_weights(path)
    finally:
        W.ARCHITECTURES["smoke_unet"] = original
    assert devices == ["meta"]


def _rewrite_metadata(tmp_path, arch, **changes):
    model, _ = small_models()[arch]
    path = tmp_path / f"{arch}_meta.pt"
    save_weights(model, path, sidecar=False)
    payload = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if key.startswith("norm_"):
            payload["metadata"]["normalization"][key.removeprefix("norm_")] = value
        else:
            payload["metadata"][key] = value
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"tile_size": 10**9}, r"tile_size=1000000000 refused"),
        ({"tile_size": "128"}, r"tile_size='128' refused"),
        ({"norm_std": [0.0] * 12}, "stds > 0"),
        ({"norm_mean": [float("nan")] * 12}, "must be finite"),
        ({"norm_mean": [0.0] * 11}, "12 bands, 11 means"),
        ({"norm_bands": ["B01"] * 4, "norm_mean": [0.0] * 4, "norm_std": [1.0] * 4}, "4 bands but the model takes 12"),
        ({"normalization": "zscore"}, "malformed normalization"),
    ],
)
def test_hostile_metadata_is_refused(tmp_path, changes, match):
    path = _rewrite_metadata(tmp_path, "smoke_unet", **changes)
    with pytest.raises(WeightsError, match=match) as info:
        load_weights(path)
    assert str(path) in str(info.value)


def _stride0_file(tmp_path, numel: int, firesmoke_format: bool) -> Path:
    """A tiny file whose one tensor is a stride-0 view of a 4-byte storage."""
    path = tmp_path / f"stride0_{numel}_{int(firesmoke_format)}.pt"
    if firesmoke_format:
        model, _ = small_models()["smoke_unet"]
        save_weights(model, path, sidecar=False)
        payload = torch.load(path, weights_only=True)
        name = "inc.double_conv.0.weight"
        shape = payload["state_dict"][name].shape
        payload["state_dict"][name] = torch.zeros(1).expand(*shape)  # the right shape, no bytes
        torch.save(payload, path)
    else:
        huge = torch.zeros(1).expand(numel)
        assert huge.stride() == (0,) and huge.untyped_storage().nbytes() == 4
        torch.save({"inc.double_conv.0.weight": huge}, path)
    assert path.stat().st_size < (1 << 20)
    return path


@pytest.mark.parametrize("firesmoke_format", [True, False])
def test_stride0_views_are_refused_before_anything_is_materialised(tmp_path, monkeypatch,
                                                                   firesmoke_format):
    path = _stride0_file(tmp_path, 2**33, firesmoke_format)
    hashed = []
    monkeypatch.setattr(W, "state_dict_sha256", lambda sd: hashed.append(1) or "0" * 64)
    with pytest.raises(WeightsError, match=r"stride-0|claims") as info:
        load_weights(path, architecture="smoke_unet")
    assert str(path) in str(info.value)
    assert hashed == []  # refused from the metadata, before hashing (.contiguous())


def test_stride0_claim_of_64_gib_allocates_nothing_under_a_memory_limit(tmp_path):
    """A child process under RLIMIT_AS: a 1.8 KB file claiming 64 GiB is a WeightsError,
    never a MemoryError or RuntimeError, and nothing near the claim is allocated."""
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "claims64gib.pt"
    torch.save({"inc.double_conv.0.weight": torch.zeros(1).expand(2**34)}, path)
    code = textwrap.dedent(f"""
        import resource, torch
        from firesmoke.errors import WeightsError
        from firesmoke.models.weights import load_weights
        vm = [int(l.split()[1]) * 1024 for l in open('/proc/self/status')
              if l.startswith('VmSize:')][0]
        resource.setrlimit(resource.RLIMIT_AS, (vm + 512 * 2**20, vm + 512 * 2**20))
        try:
            load_weights({str(path)!r}, architecture="smoke_unet")
        except WeightsError as exc:
            print("REFUSED", exc)
        try:
            torch.zeros(2**30)  # 4 GiB: proves the limit bites
        except (MemoryError, RuntimeError):
            print("LIMITED")
    """)
    env = {**os.environ, "FIRESMOKE_WEIGHTS": str(tmp_path / "w")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=env)
    assert "REFUSED" in r.stdout and "claims 68,719,476,736 bytes" in r.stdout, r.stdout + r.stderr
    assert "LIMITED" in r.stdout
    assert "Traceback" not in r.stderr
