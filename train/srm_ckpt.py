"""srm_ckpt.py: export an SRMUNet to the project's HDF5 checkpoint format ("srm-unet-checkpoint" v1, described
in ../shared/fixtures/README.md and read by src/engine/unet_io.c) and load such a file back into PyTorch.

Aliases of the shared time-embedding MLP are written as HDF5 hard links to one dataset, as the loader expects.
"""
import json

import h5py
import numpy as np
import torch

import srm_unet

FORMAT = "srm-unet-checkpoint"
FORMAT_VERSION = 1
# storage types: HDF5 converts any of them to float32 when the C loader reads with H5T_NATIVE_FLOAT
STORAGE = {"float32": np.float32, "float16": np.float16}


def architecture(model):
    """The root attributes that describe `model` (an SRMUNet) apart from patch_size and image_size."""
    return dict(model.config)


def export_h5(model, path, patch_size, image_size, storage="float32", extra_attrs=None, compress=False):
    """Write `model`'s weights (its current parameters: pass the EMA copy) as a checkpoint file.
    storage: float32 (default) or float16 (half the size; converted to float32 by HDF5 on load).
    extra_attrs: more root attributes (training provenance); ignored by the loaders."""
    arch = architecture(model)
    dtype = STORAGE[storage]
    with h5py.File(path, "w", libver=("earliest", "v108")) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        for k in ("hid_dims", "attention"):
            f.attrs[k] = np.asarray(arch[k], dtype=np.int64)
        for k in ("d_in", "d_out", "num_blocks", "num_head_channels", "t_emb_dim", "d_emb"):
            f.attrs[k] = np.int64(arch[k])
        f.attrs["patch_size"] = np.int64(patch_size)
        f.attrs["image_size"] = np.asarray(image_size, dtype=np.int64)
        f.attrs["weight_storage"] = storage
        for k, v in (extra_attrs or {}).items():
            f.attrs[k] = v if isinstance(v, (str, int, float, np.ndarray)) else json.dumps(v)
        g = f.create_group("weights")
        first = {}
        for name, p in model.state_dict().items():
            key = (p.data_ptr(), tuple(p.shape))
            if key in first:
                g[name] = g[first[key]]  # hard link: the shared MLP under another module path
                continue
            first[key] = name
            a = p.detach().to("cpu", torch.float32).numpy().astype(dtype)
            opts = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if compress and a.size >= 4096 else {}
            g.create_dataset(name, data=a, track_times=False, **opts)


def read_config(path):
    with h5py.File(path, "r") as f:
        cfg = {k: f.attrs[k] for k in f.attrs}
    return cfg


def load_h5(path, **kw):
    """(model, attrs): an SRMUNet with the file's weights (float32), strict names and shapes."""
    with h5py.File(path, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
        state = {name: torch.from_numpy(np.asarray(f["weights"][name][()], dtype=np.float32)) for name in f["weights"]}
    model = srm_unet.from_config(attrs, **kw)
    model.load_state_dict(state, strict=True)
    return model, attrs
