"""srm_data.py: training data from this project's benchmark generators (libipr through ctypes, the same code as
`ipr datagen` and the evaluation), as float tensors in [-1, 1], plus a resumable multi-worker batch stream.

Instance k of the TRAIN split is a pure function of (seed, k): batch b of rank r covers the indices
(b * world + r) * B ... + B - 1, so a resumed run continues on fresh instances, identically on any worker count.
"""
import ctypes
import os

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLIT_TRAIN, SPLIT_TEST = 0, 1
SUDOKU_DIFFICULTY = {"easy": 0, "medium": 1, "hard": 2, "any": 3}

# bench.h structs, field for field (ctypes applies the C alignment rules)
class SudokuInstance(ctypes.Structure):
    _fields_ = [("solution", ctypes.c_uint8 * 81), ("given", ctypes.c_uint8 * 81),
                ("digit_image", ctypes.c_uint32 * 81), ("num_given", ctypes.c_int),
                ("image", ctypes.c_uint8 * (252 * 252))]


class EvenPixelsInstance(ctypes.Structure):
    _fields_ = [("hue_offset", ctypes.c_float), ("mask", ctypes.c_uint8 * 1024), ("image", ctypes.c_uint8 * 3072)]


class PolygonsInstance(ctypes.Structure):
    _fields_ = [("num_polygons", ctypes.c_int), ("num_vertices", ctypes.c_int), ("num_circles", ctypes.c_int),
                ("cx", ctypes.c_float * 11), ("cy", ctypes.c_float * 11), ("radius", ctypes.c_float * 11),
                ("rotation", ctypes.c_float * 9), ("color", ctypes.c_uint8 * 3), ("pair_label", ctypes.c_int),
                ("image", ctypes.c_uint8 * (128 * 128 * 3))]


class MnistSet(ctypes.Structure):
    _fields_ = [("count", ctypes.c_uint32), ("images", ctypes.c_void_p), ("labels", ctypes.c_void_p)]


class MnistPool(ctypes.Structure):  # mnist.h: name = the curation's name or "all", sha256 = the pool's content
    _fields_ = [("set", MnistSet), ("by_digit", ctypes.c_void_p * 10), ("n_by_digit", ctypes.c_uint32 * 10),
                ("name", ctypes.c_char * 32), ("sha256", ctypes.c_char * 65)]


def find_library(path=None):
    """libipr.so: `path`, else $IPR_LIB, else build/libipr.so of this checkout."""
    for cand in (path, os.environ.get("IPR_LIB"), os.path.join(ROOT, "build", "libipr.so")):
        if cand and os.path.exists(cand):
            return cand
    raise FileNotFoundError("libipr.so not found: build the project (cmake --build build) or set IPR_LIB")


_LIBS = {}


def load_library(path=None):
    path = os.path.abspath(find_library(path))
    if path not in _LIBS:
        lib = ctypes.CDLL(path)
        lib.ipr_error_message.restype = ctypes.c_char_p
        u64, i = ctypes.c_uint64, ctypes.c_int
        lib.ipr_sudoku_make.argtypes = [ctypes.POINTER(MnistPool), u64, i, i, u64, ctypes.POINTER(SudokuInstance)]
        lib.ipr_even_pixels_make.argtypes = [u64, i, u64, ctypes.POINTER(EvenPixelsInstance)]
        lib.ipr_polygons_make.argtypes = [u64, i, u64, ctypes.POINTER(PolygonsInstance)]
        lib.ipr_mnist_pool_load.argtypes = [ctypes.c_char_p, i, ctypes.POINTER(MnistPool)]
        _LIBS[path] = lib
    return _LIBS[path]


def _check(lib, rc, what):
    if rc != 0:
        raise RuntimeError(f"{what}: {lib.ipr_error_message().decode(errors='replace')}")


class Generator:
    """Benchmark instances of one split as numpy arrays. bench: sudoku | even_pixels | counting_polygons."""

    def __init__(self, bench, seed, split=SPLIT_TRAIN, difficulty="any", lib=None, mnist_dir=None):
        self.lib = load_library(lib)
        self.bench, self.seed, self.split = bench, int(seed), int(split)
        if bench == "sudoku":
            self.inst = SudokuInstance()
            self.pool = MnistPool()
            d = mnist_dir or os.environ.get("IPR_MNIST_DIR") or os.path.join(ROOT, "datasets", "mnist")
            _check(self.lib, self.lib.ipr_mnist_pool_load(d.encode(), self.split, ctypes.byref(self.pool)),
                   "MNIST pool")
            self.difficulty = SUDOKU_DIFFICULTY[difficulty]
            self.shape = (1, 252, 252)
        elif bench == "even_pixels":
            self.inst = EvenPixelsInstance()
            self.shape = (3, 32, 32)
        elif bench == "counting_polygons":
            self.inst = PolygonsInstance()
            self.shape = (3, 128, 128)
        else:
            raise ValueError(f"unknown benchmark {bench!r}")

    def __del__(self):
        if getattr(self, "pool", None) is not None and getattr(self, "lib", None) is not None:
            self.lib.ipr_mnist_pool_free(ctypes.byref(self.pool))

    def make(self, index):
        """Fill self.inst with instance `index`; returns the instance (overwritten by the next call)."""
        lib, ref = self.lib, ctypes.byref(self.inst)
        if self.bench == "sudoku":
            rc = lib.ipr_sudoku_make(ctypes.byref(self.pool), self.seed, self.split, self.difficulty, index, ref)
        elif self.bench == "even_pixels":
            rc = lib.ipr_even_pixels_make(self.seed, self.split, index, ref)
        else:
            rc = lib.ipr_polygons_make(self.seed, self.split, index, ref)
        _check(lib, rc, f"{self.bench} instance {index}")
        return self.inst

    def batch(self, start, count):
        """images uint8 (count, C, H, W) and, for Sudoku, the given-cell masks uint8 (count, 9, 9), else None;
        labels: dict of per-instance label arrays (Counting Polygons, Sudoku solution)."""
        c, h, w = self.shape
        imgs = np.empty((count, c, h, w), dtype=np.uint8)
        given = np.empty((count, 9, 9), dtype=np.uint8) if self.bench == "sudoku" else None
        labels = {}
        if self.bench == "counting_polygons":
            labels = {k: np.empty(count, dtype=np.int64) for k in ("num_polygons", "num_vertices", "pair_label")}
        for i in range(count):
            inst = self.make(start + i)
            a = np.frombuffer(inst.image, dtype=np.uint8)
            if c == 1:
                imgs[i, 0] = a.reshape(h, w)
            else:
                imgs[i] = a.reshape(h, w, c).transpose(2, 0, 1)
            if given is not None:
                given[i] = np.frombuffer(inst.given, dtype=np.uint8).reshape(9, 9)
            if labels:
                labels["num_polygons"][i] = inst.num_polygons
                labels["num_vertices"][i] = inst.num_vertices
                labels["pair_label"][i] = inst.pair_label
        return imgs, given, labels


def to_unit(imgs_u8):
    """uint8 -> float32 in [-1, 1] (spec 2.1: Normalize(0.5, 0.5), x / 127.5 - 1)."""
    return torch.from_numpy(imgs_u8).float().div_(127.5).sub_(1.0)


class BatchStream(torch.utils.data.IterableDataset):
    """Batches b = first_batch, first_batch + 1, ... of one rank: (x float32 (B, C, H, W) in [-1, 1],
    given uint8 (B, 9, 9) or an empty tensor). With DataLoader workers, worker k makes the batches
    b = first_batch + k (mod workers) and the loader returns them in order."""

    def __init__(self, bench, seed, batch_size, first_batch=0, rank=0, world=1, lib=None, split=SPLIT_TRAIN):
        super().__init__()
        self.args = (bench, seed, split, "any", lib)
        self.B, self.first, self.rank, self.world = int(batch_size), int(first_batch), int(rank), int(world)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        gen = Generator(*self.args)
        b = self.first + wid
        while True:
            start = (b * self.world + self.rank) * self.B
            imgs, given, _ = gen.batch(start, self.B)
            yield to_unit(imgs), (torch.from_numpy(given) if given is not None else torch.zeros(0, dtype=torch.uint8))
            b += nw


def make_loader(bench, seed, batch_size, first_batch=0, rank=0, world=1, workers=2, lib=None):
    ds = BatchStream(bench, seed, batch_size, first_batch, rank, world, lib)
    kw = {"prefetch_factor": 4, "persistent_workers": False} if workers > 0 else {}
    return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, pin_memory=torch.cuda.is_available(),
                                       **kw)
