"""srm_checkpoint.py: the project's SRM checkpoint format (fixtures/README.md) from and to PyTorch.

An HDF5 file with the architecture in root attributes and /weights/<state_dict name> float32 tensors; the
shared time-embedding MLP appears under every alias as a hard link to one dataset. Names and shapes are
checked both ways against the network the attributes describe (train/srm_unet.py builds it).
"""
import json
import re

import h5py
import numpy as np
import torch

from srm_unet import from_config
from train_util import CheckpointError, check_shapes  # noqa: F401 - CheckpointError is this module's API

FORMAT = "srm-unet-checkpoint"
FORMAT_VERSION = 1

# The reference configurations (spec 1.2 / 2.4; fixtures/srm_unet_manifest.json) and the tiny fixture's.
PRESETS = {
    "ep_4": dict(hid_dims=[64, 128, 128, 256], attention=[0, 0, 1, 1], d_in=3, d_out=7, patch_size=4,
                 image_size=[32, 32]),
    "cp_ffhq_8": dict(hid_dims=[128, 128, 256, 256, 512], attention=[0, 0, 0, 1, 1], d_in=3, d_out=7,
                      patch_size=8, image_size=[128, 128]),
    "ms1000_28": dict(hid_dims=[128, 128, 256, 256, 512, 512], attention=[0, 0, 0, 0, 1, 1], d_in=1, d_out=3,
                      patch_size=28, image_size=[252, 252]),
    "tiny": dict(hid_dims=[32, 32, 64, 64], attention=[0, 0, 1, 1], d_in=1, d_out=3, patch_size=7,
                 image_size=[28, 28]),
}
DEFAULTS = dict(num_blocks=2, num_head_channels=64, t_emb_dim=512, d_emb=256)
INT_ATTRS = ("d_in", "d_out", "num_blocks", "num_head_channels", "t_emb_dim", "d_emb", "patch_size")
ARRAY_ATTRS = ("hid_dims", "attention", "image_size")

# storage types: HDF5 converts either to float32 when the C loader reads with H5T_NATIVE_FLOAT
STORAGE = {"float32": np.float32, "float16": np.float16}

# every ResBlock's copy of the shared MLP: "<block>.norm_with_embedding.t_emb.mlp.<i>.<weight|bias>"
_ALIAS = re.compile(r"^.+\.t_emb\.mlp\.(\d+\.(?:weight|bias))$")




def full_config(cfg):
    """cfg with the defaults of config/model/denoiser/unet.yaml filled in and every value an int/list."""
    out = dict(DEFAULTS)
    out.update(cfg)
    missing = [k for k in INT_ATTRS + ARRAY_ATTRS if k not in out]
    if missing:
        raise CheckpointError(f"architecture lacks {', '.join(missing)}")
    for k in INT_ATTRS:
        out[k] = int(out[k])
    for k in ARRAY_ATTRS:
        out[k] = [int(v) for v in out[k]]
    if len(out["attention"]) != len(out["hid_dims"]) or len(out["image_size"]) != 2:
        raise CheckpointError("attention needs one entry per hid_dims level and image_size two")
    return out


def alias_target(name):
    """The canonical name a shared-MLP alias points to, or None for an ordinary tensor."""
    m = _ALIAS.match(name)
    return f"time_embedding.mlp.{m.group(1)}" if m else None


def check_state_dict(state, cfg):
    """Raise CheckpointError listing every missing, unexpected and mis-shaped tensor against the network
    that cfg describes (both ways, like the C loader)."""
    expected = {k: tuple(v.shape) for k, v in from_config(cfg).state_dict().items()}
    check_shapes(state, expected)
    for k in expected:
        target = alias_target(k)
        if target and not torch.equal(state[k].float(), state[target].float()):
            raise CheckpointError(f"'{k}' should equal the shared time-embedding MLP '{target}'")


def save_h5(state, cfg, path, storage="float32", extra_attrs=None, compress=False):
    """Write state (name -> tensor) as a checkpoint of architecture cfg. Aliases become hard links.
    storage: float32, or float16 (half the size). extra_attrs: more root attributes (training provenance,
    JSON-encoded unless str/int/float/array); the loaders ignore them. compress: gzip + shuffle."""
    cfg = full_config(cfg)
    check_state_dict(state, cfg)
    dtype = STORAGE[storage]
    with h5py.File(path, "w", libver=("earliest", "v108")) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        for k in INT_ATTRS:
            f.attrs[k] = np.int64(cfg[k])
        for k in ARRAY_ATTRS:
            f.attrs[k] = np.asarray(cfg[k], dtype=np.int64)
        f.attrs["weight_storage"] = storage
        for k, v in (extra_attrs or {}).items():
            f.attrs[k] = v if isinstance(v, (str, int, float, np.ndarray)) else json.dumps(v)
        g = f.create_group("weights")
        for name, t in state.items():
            if alias_target(name) is None:
                a = t.detach().to("cpu", torch.float32).numpy().astype(dtype)
                opts = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if compress and a.size >= 4096 else {}
                g.create_dataset(name, data=a, track_times=False, **opts)
        for name in state:
            target = alias_target(name)
            if target is not None:
                g[name] = g[target]  # hard link


def export_h5(model, path, patch_size, image_size, storage="float32", extra_attrs=None, compress=False):
    """Write an SRMUNet's current weights (pass the EMA copy) as a checkpoint for patch_size / image_size."""
    cfg = dict(model.config, patch_size=int(patch_size), image_size=[int(v) for v in image_size])
    save_h5(model.state_dict(), cfg, path, storage, extra_attrs, compress)


def load_h5(path):
    """(cfg, state_dict) of a checkpoint file, checked both ways."""
    with h5py.File(path, "r") as f:
        fmt = f.attrs.get("format")
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        if fmt != FORMAT:
            raise CheckpointError(f"{path}: attribute 'format' is {fmt!r}, expected {FORMAT!r}")
        if int(f.attrs.get("format_version", -1)) != FORMAT_VERSION:
            raise CheckpointError(f"{path}: format_version {f.attrs.get('format_version')} is not {FORMAT_VERSION}")
        cfg = full_config({k: f.attrs[k].tolist() for k in INT_ATTRS + ARRAY_ATTRS if k in f.attrs})
        g = f["weights"]  # flat: names hold dots, not slashes; every alias is a link of its own
        state = {n: torch.from_numpy(g[n][()]) for n in g}
    check_state_dict(state, cfg)
    return cfg, state


def load_model(path, **kw):
    """(model in eval mode, root attributes) of a checkpoint file; names and shapes checked both ways."""
    cfg, state = load_h5(path)
    model = from_config(cfg, **kw)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    with h5py.File(path, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
    return model.eval(), attrs
