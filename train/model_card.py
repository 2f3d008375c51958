"""model_card.py: write the model card (models/NAME.md) of an SRM denoiser exported by train_srm.py (from the
provenance in the checkpoint's `training` attribute and the loss log) or of a scorer (from its _metrics.json).

Usage: python3 train/model_card.py models/NAME.h5 --log LOG.csv --png models/NAME_loss.png [--notes FILE.md]
       python3 train/model_card.py models/NAME.h5 --metrics models/NAME_metrics.json [--png ...] [--notes ...]
Writes models/NAME.md (an SRM card's PNG is drawn from the log when --png names a file that does not exist).
"""
import argparse
import csv
import json
import os
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train_util import sha256  # noqa: E402

BENCH_DATA = {
    "even_pixels": "Even Pixels (spec 4.2), 32x32 RGB, generated on the fly by libipr (`ipr_even_pixels_make`, "
                   "TRAIN split, seed {seed}): every step sees new instances",
    "counting_polygons": "Counting Polygons (spec 4.3 with this project's procedural backgrounds), 128x128 RGB, "
                         "generated on the fly by libipr (`ipr_polygons_make`, TRAIN split, seed {seed})",
    "sudoku": "MNIST Sudoku (spec 4.1), 252x252 grey, generated on the fly by libipr (`ipr_sudoku_make`, TRAIN "
              "split: grids of the train stream, digits of the MNIST train pool, clue count uniform 0..80, seed "
              "{seed}); clue cells have t = 0 and loss weight 0",
}


def _str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def tail_means(rows, key, n=10):
    v = [float(r[key]) for r in rows[-n:]]
    return float(np.mean(v)) if v else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("h5")
    ap.add_argument("--log")
    ap.add_argument("--png")
    ap.add_argument("--metrics", help="a scorer's _metrics.json (train_digit.py / train_polygons.py)")
    ap.add_argument("--notes", help="markdown appended under 'Notes' (validation figures, caveats)")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    with h5py.File(a.h5, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
    if a.metrics:
        return classifier_card(a, attrs)
    if not (a.log and a.png):
        raise SystemExit("an SRM card needs --log and --png")
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


def classifier_card(a, attrs):
    with open(a.metrics) as f:
        m = json.load(f)
    kind = attrs["kind"].decode() if isinstance(attrs["kind"], bytes) else str(attrs["kind"])
    name = os.path.splitext(os.path.basename(a.h5))[0]
    out = a.out or os.path.splitext(a.h5)[0] + ".md"
    head = [f"# {name}", "", f"Scorer network of kind `{kind}` (include/ipr/classifier.h, train/classifiers.py). File: "
            f"`{os.path.basename(a.h5)}`, {os.path.getsize(a.h5) / 2 ** 20:.2f} MiB, weights stored as "
            f"{_str(attrs.get('weight_storage', 'float32'))}, SHA-256 "
            f"`{sha256(a.h5)}`.", "", "## Architecture"]
    if kind == "mnist_digit":
        body = [
            "- The reference's digit classifier (spec 4.1): conv3x3 1->32, ReLU, maxpool 2, conv3x3 32->64, ReLU, "
            "maxpool 2, FC 3136->128, ReLU, FC 128->10 (dropout 0.25 / 0.5 in training only); 421,642 parameters. "
            "Input: a 28x28 cell in [-1, 1] (x / 127.5 - 1), as the scorer sees generated Sudoku cells.",
            "", "## Data",
            f"- Training: the TRAIN pool of `datasets/mnist` ({m['train_count']:,} digits, the C loader's split), "
            "with random affine augmentation (rotation up to 12 degrees, scale 0.9-1.1, shift up to 2.5 px), "
            + (f"elastic distortion ({m['elastic_px']} px RMS, smoothing 4 px), " if m.get("elastic_px") else "")
            + f"and, for half of each batch, Gaussian noise of std U(0, {m.get('noise_max', 0.15)}).",
            f"- Reported: the TEST pool ({m['test_count']:,} digits); the schedule is fixed in advance.",
            "", "## Training",
            f"- {m['epochs']} epochs, batch {m['batch']}, AdamW (weight decay 1e-4), one-cycle lr peak {m['lr']}, "
            f"label smoothing 0.05, weights averaged over the last {m['weight_average_last_epochs']} epochs; "
            f"seed {m['seed']}.",
            f"- {m['epochs'] * m['train_count']:,} samples seen; {m['cpu_minutes']:.1f} CPU-minutes "
            f"({m['threads']} thread, shared 2-core machine), PyTorch {m['torch']}.",
            "", "## Results",
            f"- **Test-pool accuracy {100 * m['test_accuracy']:.2f}%** ({m['test_errors']} of {m['test_count']} "
            f"wrong); train pool (clean) {100 * m['train_accuracy']:.2f}%.",
            "- The C engine (`ipr_digit_classifier_*`) reads the same file; `ctest -R train_digit` checks its "
            "logits against PyTorch and its test-pool accuracy (>= 99%).",
        ]
        if a.png:
            body += ["", f"![training loss]({os.path.basename(a.png)})"]
    else:
        acc = m["heldout_accuracy"]
        body = [
            f"- This project's four-head network (spec 4.3 heads): {len(attrs['channels'])} conv3x3 layers of widths "
            f"{list(map(int, attrs['channels']))} and strides "
            f"{list(map(int, attrs['strides'])) if 'strides' in attrs else [2] * len(attrs['channels'])}, each with "
            f"GroupNorm ({int(attrs['norm_groups'])} groups) and ReLU, global average pool, fc {int(attrs['hidden'])}, "
            f"four heads; input {int(attrs['image_size'])}x{int(attrs['image_size'])} RGB in [-1, 1].",
            "", "## Data",
            "- Generated Counting Polygons images of the TRAIN split (libipr), "
            f"{100 * m['args'].get('rerender', 0):.0f}% re-rendered by libipr's rasterizer: of those, "
            f"{100 * m['args'].get('nonuniform', 0):.0f}% with some polygons given another vertex count (negatives "
            f"for `is_uniform`) and {100 * m['args'].get('mismatch', 0):.0f}% with the numerals of another pair "
            "(so that `numbers_label` must read them); see train_polygons.py.",
            f"- Reported: {m['heldout_counts']['num_polygons']} TEST-split images of the same mixture.",
            "", "## Training",
            f"- {m['steps']:,} steps, {m['samples_seen']:,} samples seen, batch {m['args']['batch']}, AdamW (weight "
            f"decay 1e-4), lr {m['args']['lr']} with 3% warm-up and cosine decay to 0, {m['minutes']:.1f} minutes on "
            f"{m['device']}, PyTorch {m['torch']}.",
            "", "## Results (held-out accuracy per head)",
            "| num_polygons | num_vertices | is_uniform | numbers_label |", "|---|---|---|---|",
            "| " + " | ".join(f"{100 * acc[k]:.2f}%" for k in ("num_polygons", "num_vertices", "is_uniform",
                                                               "numbers_label")) + " |",
        ]
    lines = head + body + [""]
    if a.notes:
        with open(a.notes) as f:
            lines += ["## Notes", "", f.read().strip(), ""]
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print(f"model_card: wrote {out}")


if __name__ == "__main__":
    main()
