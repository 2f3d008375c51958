"""classifiers.py: the two scorer networks of the C engine (include/ipr/classifier.h) in PyTorch, with the same
parameter names, and `export_h5` writing the "ipr-classifier" checkpoint the C loader reads.

- MNISTClassifier: the reference's Sudoku digit classifier (spec 4.1; srmbench mnist_sudoku_evaluation.py /
  SRM src/misc/mnist_classifier.py), same module names (conv1, conv2, pool, dropout1, dropout2, fc1, fc2), so a
  reference state_dict loads with `load_state_dict(..., strict=True)`.
- CountingPolygonsClassifier: this project's plain convolutional four-head network for spec 4.3 (the reference
  uses a ResNet-50; only its head names are kept: heads.num_polygons, heads.num_vertices, heads.is_uniform,
  heads.numbers_label). numbers_label class i is the pair of ipr_polygons_pair_index (src/bench/
  counting_polygons.c): vertices 3..7 outer, counts 1..9 inner, each unordered pair once.

Both take images in [-1, 1] as they are (spec 7 pitfall 7). Trained by train_digit.py and train_polygons.py.
"""
import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FORMAT = "ipr-classifier"
FORMAT_VERSION = 2  # 2 added the polygons classifier's `strides` (variable depth); the C loader reads 1 and 2
KIND_DIGIT = "mnist_digit"
KIND_POLYGONS = "counting_polygons"

# numbers_label classes (the reference labeler's order, as src/bench/counting_polygons.c)
NUMBER_PAIRS = []
for _v in range(3, 8):
    for _n in range(1, 10):
        _p = (min(_n, _v), max(_n, _v))
        if _p not in NUMBER_PAIRS:
            NUMBER_PAIRS.append(_p)
assert len(NUMBER_PAIRS) == 35


def pair_index(a, b):
    """Class index of the unordered numeral pair {a, b} (ipr_polygons_pair_index)."""
    return NUMBER_PAIRS.index((min(a, b), max(a, b)))


class MNISTClassifier(nn.Module):
    """Spec 4.1 digit classifier: (N, 1, 28, 28) -> (N, 10) logits."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout2d(0.5)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.dropout1(self.pool(F.relu(self.conv1(x))))
        x = self.dropout2(self.pool(F.relu(self.conv2(x))))
        x = x.reshape(x.shape[0], 64 * 7 * 7)
        return self.fc2(F.relu(self.fc1(x)))

    def architecture(self):
        return {"channels": [32, 64], "hidden": 128, "image_size": 28, "num_classes": 10}


HEADS = (("num_polygons", 9), ("num_vertices", 5), ("is_uniform", 2), ("numbers_label", 35))


class CountingPolygonsClassifier(nn.Module):
    """Spec 4.3 scorer: (N, 3, S, S) -> dict of the four heads' logits.

    L conv3x3 (padding 1, stride strides[l] in {1, 2}) + GroupNorm(norm_groups) (none if 0) + ReLU, global
    average pool, fc1 + ReLU, four linear heads. The default (4 layers of stride 2) is format version 1's only
    architecture; train_polygons.py trains a deeper one."""

    def __init__(self, channels=(32, 64, 128, 128), hidden=128, norm_groups=8, image_size=128, strides=None):
        super().__init__()
        self.channels = tuple(int(c) for c in channels)
        self.strides = tuple(int(s) for s in strides) if strides is not None else (2,) * len(self.channels)
        if not 1 <= len(self.channels) <= 16 or len(self.strides) != len(self.channels):
            raise ValueError(f"channels {self.channels} and strides {self.strides}: 1..16 layers, one stride each")
        if any(s not in (1, 2) for s in self.strides):
            raise ValueError(f"strides {self.strides}: each 1 or 2")
        self.hidden = int(hidden)
        self.norm_groups = int(norm_groups)
        self.image_size = int(image_size)
        c_in = 3
        for i, (c, st) in enumerate(zip(self.channels, self.strides), start=1):
            setattr(self, f"conv{i}", nn.Conv2d(c_in, c, 3, stride=st, padding=1))
            if self.norm_groups > 0:
                setattr(self, f"norm{i}", nn.GroupNorm(self.norm_groups, c))
            c_in = c
        self.fc1 = nn.Linear(c_in, self.hidden)
        self.heads = nn.ModuleDict({name: nn.Linear(self.hidden, n) for name, n in HEADS})

    def forward(self, x):
        for i in range(1, len(self.channels) + 1):
            x = getattr(self, f"conv{i}")(x)
            if self.norm_groups > 0:
                x = getattr(self, f"norm{i}")(x)
            x = F.relu(x)
        x = F.relu(self.fc1(x.mean(dim=(2, 3))))
        return {name: head(x) for name, head in self.heads.items()}

    def architecture(self, version=FORMAT_VERSION):
        arch = {"in_channels": 3, "image_size": self.image_size, "channels": list(self.channels),
                "hidden": self.hidden, "norm_groups": self.norm_groups,
                "num_classes": [n for _, n in HEADS]}
        if version >= 2:
            arch["strides"] = list(self.strides)
        elif len(self.channels) != 4 or set(self.strides) != {2}:
            raise ValueError("format version 1 holds only 4 layers of stride 2")
        return arch


def export_h5(model, path, kind, compress=True, version=FORMAT_VERSION, storage="float32"):
    """Write `model` as an "ipr-classifier" checkpoint: root attributes format, format_version, kind and the
    architecture numbers; /weights/<state_dict name> with PyTorch's shapes. compress: chunked,
    shuffle + gzip (the C loader reads either layout). version 1 (no `strides`) only for the tests' fixture
    of the old layout. storage "float16" halves the file (HDF5 converts to float32 on load, in C and here);
    root attribute weight_storage records it."""
    if storage not in ("float32", "float16"):
        raise ValueError(f"storage {storage!r}: float32 or float16")
    expected = {KIND_DIGIT: MNISTClassifier, KIND_POLYGONS: CountingPolygonsClassifier}
    if kind not in expected or not isinstance(model, expected[kind]):
        raise ValueError(f"kind {kind!r} does not match a {type(model).__name__}")
    with h5py.File(path, "w", libver=("earliest", "v108"), track_order=False) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = np.int64(version)
        f.attrs["kind"] = kind
        f.attrs["weight_storage"] = storage
        arch = model.architecture(version) if kind == KIND_POLYGONS else model.architecture()
        for key, value in arch.items():
            f.attrs[key] = np.asarray(value, dtype=np.int64)
        g = f.create_group("weights")
        for name, t in model.state_dict().items():
            a = t.detach().to("cpu", torch.float32).numpy().astype(storage)
            big = compress and a.size >= 1024
            opts = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if big else {}
            g.create_dataset(name, data=a, track_times=False, **opts)


def load_h5(path):
    """Read a checkpoint written by export_h5 back into its module (strict names and shapes)."""
    with h5py.File(path, "r") as f:
        kind = f.attrs["kind"]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind == KIND_DIGIT:
            model = MNISTClassifier()
        elif kind == KIND_POLYGONS:
            model = CountingPolygonsClassifier(channels=[int(c) for c in f.attrs["channels"]],
                                               hidden=int(f.attrs["hidden"]), norm_groups=int(f.attrs["norm_groups"]),
                                               image_size=int(f.attrs["image_size"]),
                                               strides=[int(s) for s in f.attrs["strides"]] if "strides" in f.attrs
                                               else None)
        else:
            raise ValueError(f"{path}: unknown kind {kind!r}")
        state = {name: torch.from_numpy(f["weights"][name][()].astype(np.float32)) for name in f["weights"]}
    model.load_state_dict(state, strict=True)
    return model.eval()
