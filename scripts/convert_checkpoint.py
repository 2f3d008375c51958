#!/usr/bin/env python3
"""convert_checkpoint.py: turn a PyTorch SRM denoiser into this project's HDF5 checkpoint format.

Accepts a plain state_dict (.pt/.pth, optionally wrapped by DDP's "module."), or the reference's Lightning
checkpoint (.ckpt), whose EMA weights (`ema_denoiser.module.*`, torch AveragedModel) are taken by default.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))

import torch  # noqa: E402

from srm_checkpoint import PRESETS, CheckpointError, full_config, save_h5  # noqa: E402


def pick_weights(obj, use_ema):
    """(state_dict with denoiser-relative names, description of where they came from)."""
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        sd = obj["state_dict"]
        prefixes = (["ema_denoiser.module."] if use_ema else []) + ["denoiser."]
        for p in prefixes:
            sub = {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}
            if sub:
                return sub, f"Lightning checkpoint, '{p}*' ({'EMA' if 'ema' in p else 'raw'} weights)"
        raise CheckpointError(f"Lightning checkpoint has no tensors under {' or '.join(prefixes)}")
    if isinstance(obj, dict) and all(torch.is_tensor(v) for v in obj.values()):
        for p in ("module.", "denoiser."):
            if obj and all(k.startswith(p) for k in obj):
                return {k[len(p):]: v for k, v in obj.items()}, f"state_dict (prefix '{p}' stripped)"
        return dict(obj), "state_dict"
    raise CheckpointError("input is neither a state_dict nor a Lightning checkpoint with a 'state_dict'")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="PyTorch state_dict (.pt/.pth) or Lightning checkpoint (.ckpt)")
    ap.add_argument("--output", "-o", required=True, help="HDF5 checkpoint to write")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="reference architecture (ep_4, cp_ffhq_8, ms1000_28)")
    ap.add_argument("--hid-dims", help="comma-separated widths per level (instead of --preset)")
    ap.add_argument("--attention", help="comma-separated 0/1 per level")
    ap.add_argument("--d-in", type=int)
    ap.add_argument("--d-out", type=int)
    ap.add_argument("--patch-size", type=int, help="pixels per region side")
    ap.add_argument("--image-size", help="H,W")
    ap.add_argument("--no-ema", action="store_true", help="Lightning checkpoints: take the raw, not the EMA, weights")
    ap.add_argument("--force", action="store_true", help="overwrite --output")
    a = ap.parse_args(argv)
    try:
        cfg = dict(PRESETS[a.preset]) if a.preset else {}
        ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
        for key, val, conv in (("hid_dims", a.hid_dims, ints), ("attention", a.attention, ints),
                               ("d_in", a.d_in, int), ("d_out", a.d_out, int),
                               ("patch_size", a.patch_size, int), ("image_size", a.image_size, ints)):
            if val is not None:
                cfg[key] = conv(val) if isinstance(val, str) else val
        cfg = full_config(cfg)
        if os.path.exists(a.output) and not a.force:
            raise CheckpointError(f"{a.output} exists (use --force to overwrite)")
        if not os.path.isfile(a.input):
            raise CheckpointError(f"{a.input}: no such file")
        try:
            obj = torch.load(a.input, map_location="cpu", weights_only=False)
        except TypeError:  # torch < 2.0 has no weights_only
            obj = torch.load(a.input, map_location="cpu")
        state, source = pick_weights(obj, not a.no_ema)
        tmp = f"{a.output}.tmp.{os.getpid()}"
        try:
            save_h5(state, cfg, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, a.output)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (CheckpointError, ValueError, OSError, RuntimeError) as e:
        print(f"convert_checkpoint: error: {e}", file=sys.stderr)
        return 1
    n = sum(int(v.numel()) for v in state.values())
    print(f"convert_checkpoint: {a.output}: {len(state)} tensors ({n:,} entries) from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
