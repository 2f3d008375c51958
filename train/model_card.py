"""model_card.py: write the model card (models/NAME.md) of an SRM denoiser exported by train_srm.py, from the
provenance stored in the checkpoint (root attribute `training`) and the loss log.

Usage: python3 train/model_card.py models/NAME.h5 --log LOG.csv --png models/NAME_loss.png [--notes FILE.md]
Writes models/NAME.md (the PNG is drawn from the log when --png names a file that does not exist yet).
"""
import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

BENCH_DATA = {
    "even_pixels": "Even Pixels (spec 4.2), 32x32 RGB, generated on the fly by libipr (`ipr_even_pixels_make`, "
                   "TRAIN split, seed {seed}): every step sees new instances",
    "counting_polygons": "Counting Polygons (spec 4.3 with this project's procedural backgrounds), 128x128 RGB, "
                         "generated on the fly by libipr (`ipr_polygons_make`, TRAIN split, seed {seed})",
    "sudoku": "MNIST Sudoku (spec 4.1), 252x252 grey, generated on the fly by libipr (`ipr_sudoku_make`, TRAIN "
              "split: grids of the train stream, digits of the MNIST train pool, clue count uniform 0..80, seed "
              "{seed}); clue cells have t = 0 and loss weight 0",
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tail_means(rows, key, n=10):
    v = [float(r[key]) for r in rows[-n:]]
    return float(np.mean(v)) if v else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("h5")
    ap.add_argument("--log", required=True)
    ap.add_argument("--png", required=True)
    ap.add_argument("--notes", help="markdown appended under 'Notes' (validation figures, caveats)")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    with h5py.File(a.h5, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
    tr = json.loads(attrs["training"])
    cfg = tr["cfg"]
    with open(a.log) as f:
        rows = list(csv.DictReader(f))
    if not os.path.exists(a.png):
        subprocess.run([sys.executable, os.path.join(HERE, "plot_losses.py"), a.log, a.png,
                        "--title", os.path.basename(a.h5)], check=True)
    name = os.path.splitext(os.path.basename(a.h5))[0]
    out = a.out or os.path.splitext(a.h5)[0] + ".md"
    ev = tr["heldout_ema_loss"]
    dev = tr["device"]
    unit = "CPU" if dev == "cpu" else "GPU"
    lines = [
        f"# {name}",
        "",
        f"SRM denoiser for {tr['benchmark']}, trained by `train/train_srm.py --preset {tr['preset']}` "
        f"(spec sections 1, 2 and 6). File: `{os.path.basename(a.h5)}`, "
        f"{os.path.getsize(a.h5) / 2 ** 20:.2f} MiB, weights stored as {attrs.get('weight_storage', 'float32')}, "
        f"SHA-256 `{sha256(a.h5)}`.",
        "",
        "## Architecture",
        f"- SRM U-Net (spec 1.2-1.4), `hid_dims` {list(map(int, attrs['hid_dims']))}, attention at levels "
        f"{[i for i, x in enumerate(attrs['attention']) if x]} (+ the bottleneck), {int(attrs['num_blocks'])} "
        f"ResBlocks per encoder level, d_in {int(attrs['d_in'])}, d_out {int(attrs['d_out'])}, "
        f"t_emb_dim {int(attrs['t_emb_dim'])}, sinusoid width {int(attrs['d_emb'])}.",
        f"- {tr['params']:,} parameters; input {list(map(int, attrs['image_size']))}, regions of "
        f"{int(attrs['patch_size'])}x{int(attrs['patch_size'])} px ({cfg['grid'][0]}x{cfg['grid'][1]} regions).",
        "",
        "## Data",
        "- " + BENCH_DATA[tr["benchmark"]].format(seed=cfg["data_seed"]) + ".",
        f"- Noise levels: `mean_beta` (spec 2.3), beta_sharpness {cfg['sharpness']}, add_zeros "
        f"{cfg['add_zeros']}, inverse-density loss weights from 80,000 draws.",
        "",
        "## Training",
        f"- {tr['steps']:,} steps, {tr['samples_seen']:,} samples seen, batch {cfg['batch']} per device x "
        f"{tr['devices']} device(s) ({dev}, {tr['precision']}).",
        f"- Compute: {tr['train_minutes_x_devices']:.1f} {unit}-minutes in the training loop "
        f"(wall time x devices).",
        f"- AdamW betas (0.95, 0.999), weight decay {cfg['weight_decay']}, lr {cfg['lr']} with LinearLR warm-up "
        f"from 2e-4 x lr over {cfg['warmup']} steps, gradient clipping {cfg['grad_clip']}, dropout {cfg['dropout']}, "
        f"EMA {cfg['ema']}" + (" with warm-up min(decay, (1+n)/(10+n)) (departure from spec 6, so that a short "
                              "run's EMA is not mostly its initialisation)" if cfg['ema_warmup'] else "") + ".",
        f"- PyTorch {tr['torch']}, code {tr['git_sha']}; stop reason: {tr['stop']}.",
        "",
        "## Final losses",
        "| | total | L_mu | L_vlb (bits) | L_sigma |",
        "|---|---|---|---|---|",
        f"| training, mean of the last 10 log rows | {tail_means(rows, 'loss'):.4f} | {tail_means(rows, 'mu'):.4f} | "
        f"{tail_means(rows, 'vlb'):.4f} | {tail_means(rows, 'sigma'):.4f} |",
        f"| held-out: the first {tr.get('heldout_batch', 64)} TEST-split instances, EMA weights, fixed noise | "
        f"{ev['loss']:.4f} | {ev['mu']:.4f} | {ev['vlb']:.4f} | {ev['sigma']:.4f} |",
        "",
        f"![loss curve]({os.path.basename(a.png)})",
        "",
    ]
    if a.notes:
        with open(a.notes) as f:
            lines += ["## Notes", "", f.read().strip(), ""]
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print(f"model_card: wrote {out}")


if __name__ == "__main__":
    main()
