#!/usr/bin/env bash
# cli_bench_checkpoint.sh IPR SRC PYTHON: `ipr bench --save-checkpoint CONFIG=PATH` on the CPU. The `tiny` U-Net and
# the `dit_tiny` DiT are written with the architecture bench times (root attributes, the parameter count bench
# prints), the same bytes twice, and load and run in `ipr forward --device cpu`; the paper's ep_4 U-Net runs two Even
# Pixels instances through `ipr run` on the reference config with `--set model.checkpoint` (the path of the GPU study,
# scripts/device/unet_gpu.sh study; the Sudoku net, ms1000_28, is 484 GFLOP a pass: minutes a pass on this CPU).
# Errors: an unknown config, a malformed argument, a missing directory, a directory as PATH, an existing PATH without
# --force (left untouched) and --force alone each exit non-zero with a clear message and write nothing.
set -u
ipr=$1
src=$2
py=${3:-/usr/bin/python3}
# shellcheck source=lib.sh
source "$src/tests/lib.sh"

# ---- tiny: what bench times, written and read back ----
"$ipr" bench --configs tiny --backends cpu --batches 1 --min-time 0.01 >"$tmp/bench.txt" 2>&1 ||
  bad "ipr bench --configs tiny ran ($(tail -3 "$tmp/bench.txt"))"
bench_params=$(sed -n 's/^tiny: \([0-9]*\) parameters.*/\1/p' "$tmp/bench.txt")
# --profile is accepted and documented; on the CPU backend there is no stage profile to print (it is the GPU
# engine's: test_unet_cuda test_profile, scripts/device/unet_gpu.sh bench)
"$ipr" bench --configs tiny --backends cpu --batches 1 --min-time 0.01 --profile >"$tmp/bench_prof.txt" 2>&1 ||
  bad "ipr bench --profile on the CPU ran ($(tail -3 "$tmp/bench_prof.txt"))"
grep -q "^profile" "$tmp/bench_prof.txt" && bad "ipr bench --profile printed a stage profile for the CPU backend"
"$ipr" bench --help | grep -q -- "--profile" || bad "ipr bench --help lists --profile"
if "$ipr" bench --save-checkpoint "tiny=$tmp/tiny.h5" >"$tmp/save.txt" 2>&1 &&
   grep -q "wrote $tmp/tiny.h5: tiny, SRM U-Net, $bench_params parameters, RANDOM weights" "$tmp/save.txt" &&
   [ -n "$bench_params" ] && ! compgen -G "$tmp/tiny.h5.tmp*" >/dev/null; then
  ok "tiny written, $bench_params parameters as bench counts them, no temporary left"
else
  bad "tiny save (bench: '$bench_params'; $(cat "$tmp/save.txt"))"
fi
cp "$tmp/tiny.h5" "$tmp/tiny_first.h5"
if "$ipr" bench --save-checkpoint "tiny=$tmp/tiny.h5" --force >/dev/null 2>&1 &&
   "$py" - "$tmp/tiny.h5" "$tmp/tiny_first.h5" <<'EOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
# bench.c's k_cfgs "tiny" with the ipr_unet_config_init defaults
want = dict(format="srm-unet-checkpoint", format_version=1, hid_dims=[32, 32, 64, 64], attention=[0, 0, 1, 1],
            num_blocks=2, d_in=1, d_out=3, num_head_channels=64, t_emb_dim=512, d_emb=256, patch_size=7,
            image_size=[28, 28])
for k, v in want.items():
    got = a.attrs[k]
    got = got.decode() if isinstance(got, bytes) else got
    assert np.array_equal(np.asarray(got), np.asarray(v)), (k, got, v)
names = []
a["weights"].visit(lambda n: names.append(n) if isinstance(a["weights"][n], h5py.Dataset) else None)
assert len(names) > 50, len(names)
for n in names:  # --force rewrote the same deterministic weights
    assert np.array_equal(a["weights"][n][...], b["weights"][n][...]), n
w = a["weights/model.decoder.out.2.weight"][...]  # (d_out, 32, 3, 3): random, not zero-initialised
assert w.shape == (3, 32, 3, 3) and np.isfinite(w).all() and np.abs(w).max() > 0
EOF
then
  ok "tiny: the bench architecture in the root attributes; --force rewrites the same weights"
else
  bad "tiny checkpoint attributes or determinism"
fi

# a batch of two 28 x 28 images, noise levels constant on each 7 x 7 region (the DiT requires it)
"$py" - "$tmp/in.h5" <<'EOF'
import sys, h5py, numpy as np
r = np.random.default_rng(3)
x = r.standard_normal((2, 1, 28, 28)).astype(np.float32)
lv = r.choice([0.0, 1.0, 0.4], size=(2, 1, 4, 4)).astype(np.float32)
t = lv.repeat(7, axis=2).repeat(7, axis=3)
with h5py.File(sys.argv[1], "w") as f:
    f["input/x"], f["input/t"] = x, t
EOF
# forward_ok NAME CKPT D_OUT: ipr forward --device cpu runs, /output/y is (2, D_OUT, 28, 28), finite, not constant
forward_ok() {
  rm -f "$tmp/out.h5"
  if "$ipr" forward --checkpoint "$2" --input "$tmp/in.h5" --output "$tmp/out.h5" --device cpu >"$tmp/fwd.txt" 2>&1 &&
     "$py" - "$tmp/out.h5" "$3" <<'EOF'
import sys, h5py, numpy as np
y = h5py.File(sys.argv[1], "r")["output/y"][...]
assert y.shape == (2, int(sys.argv[2]), 28, 28), y.shape
assert np.isfinite(y).all() and y.std() > 0
EOF
  then ok "$1 loads and runs in ipr forward --device cpu"; else bad "$1 forward ($(tail -3 "$tmp/fwd.txt"))"; fi
}
forward_ok tiny "$tmp/tiny.h5" 3

# ---- the DiT bench configs are written too ----
dit_fmt=srm-dit-checkpoint
if "$ipr" bench --save-checkpoint "dit_tiny=$tmp/dit.h5" >"$tmp/save.txt" 2>&1 &&
   grep -q "dit_tiny, region-token DiT" "$tmp/save.txt" &&
   "$py" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); assert f.attrs['format'] in (b'$dit_fmt', '$dit_fmt')" \
     "$tmp/dit.h5"; then
  ok "dit_tiny written as a DiT checkpoint"
else
  bad "dit_tiny save ($(cat "$tmp/save.txt"))"
fi
forward_ok dit_tiny "$tmp/dit.h5" 3

# ---- a paper configuration through the study's path: the reference config, the checkpoint set on the command line
if "$ipr" bench --save-checkpoint "ep_4=$tmp/ep_4.h5" >/dev/null 2>&1 &&
   "$ipr" run "$src/configs/reference/even_pixels.yaml" --set "model.checkpoint=$tmp/ep_4.h5" \
     --set instances.count=2 --set ipr.iterations=1 --set sampler.steps_per_region=1 --set ipr.steps_per_region=1 \
     --set device.kind=cpu --set device.precision=fp32 --set device.batch=2 --output "$tmp/run" --progress none \
     >"$tmp/run.txt" 2>&1 &&
   grep -qE '^\| ep_4 \| uniform \| 0.25 \| 2 \|' "$tmp/run.txt"; then
  ok "ep_4 runs two Even Pixels instances through ipr run configs/reference/even_pixels.yaml"
else
  bad "ep_4 through ipr run ($(tail -5 "$tmp/run.txt"))"
fi
rm -rf "$tmp/run" "$tmp/ep_4.h5"

# ---- errors: non-zero exit, the message, nothing written ----
# expect_fail NAME PATTERN OUT ARGS...: `ipr bench ARGS` fails with PATTERN on stderr, OUT and OUT.tmp* absent
expect_fail() {
  local name=$1 pattern=$2 out=$3
  shift 3
  "$ipr" bench "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local rc=$?
  if [ $rc -ne 0 ] && grep -qE -- "$pattern" "$tmp/stderr" && [ ! -e "$out" ] && ! compgen -G "$out.tmp*" >/dev/null
  then
    ok "$name: $(grep -m1 error "$tmp/stderr" | cut -c1-150)"
  else
    bad "$name (rc=$rc, stderr: $(cat "$tmp/stderr"))"
  fi
}
expect_fail "unknown config" "unknown config 'ms1000' in --save-checkpoint \(ep_4, .*dit_tiny\)" "$tmp/x.h5" \
  --save-checkpoint "ms1000=$tmp/x.h5"
expect_fail "no PATH" "--save-checkpoint wants CONFIG=PATH.h5, got 'tiny'" "$tmp/tiny" --save-checkpoint tiny
expect_fail "missing directory" "cannot write $tmp/nodir/x.h5: no directory $tmp/nodir" "$tmp/nodir/x.h5" \
  --save-checkpoint "tiny=$tmp/nodir/x.h5"
expect_fail "a file as the directory" "cannot write $tmp/tiny.h5/x.h5: $tmp/tiny.h5 is not a directory" \
  "$tmp/tiny.h5/x.h5" --save-checkpoint "tiny=$tmp/tiny.h5/x.h5"
mkdir "$tmp/adir"
"$ipr" bench --save-checkpoint "tiny=$tmp/adir" --force >/dev/null 2>"$tmp/stderr"
rc=$?
if [ $rc -ne 0 ] && grep -q "$tmp/adir is a directory, not a checkpoint file" "$tmp/stderr" &&
   [ -z "$(ls -A "$tmp/adir")" ]; then
  ok "a directory as PATH is refused (even with --force)"
else
  bad "directory as PATH (rc=$rc, $(cat "$tmp/stderr"))"
fi
# an existing file without --force: refused, its bytes and mtime untouched
printf 'not a checkpoint\n' >"$tmp/keep.h5"
touch -d '2020-01-01 00:00:00' "$tmp/keep.h5"
before=$(stat -c '%s %Y' "$tmp/keep.h5")
"$ipr" bench --save-checkpoint "ep_4=$tmp/keep.h5" >/dev/null 2>"$tmp/stderr"
rc=$?
if [ $rc -ne 0 ] && grep -q "$tmp/keep.h5 exists (use --force to overwrite)" "$tmp/stderr" &&
   [ "$(cat "$tmp/keep.h5")" = "not a checkpoint" ] && [ "$(stat -c '%s %Y' "$tmp/keep.h5")" = "$before" ] &&
   ! compgen -G "$tmp/keep.h5.tmp*" >/dev/null; then
  ok "an existing file without --force is refused and left untouched"
else
  bad "existing file (rc=$rc, $(cat "$tmp/stderr"))"
fi
expect_fail "--force alone" "--force only applies to --save-checkpoint" "$tmp/none.h5" --force --configs tiny

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
