"""train_util.py: the small pieces every training and checkpoint script of train/ shares: the both-way state_dict
check of a checkpoint against its architecture, atomic saves, file hashes."""
import hashlib
import os


class CheckpointError(ValueError):
    pass


def check_shapes(state, expected):
    """Raise CheckpointError listing every missing, unexpected and mis-shaped tensor of state (name -> tensor)
    against expected (name -> shape tuple), both ways like the C loader: the first four spelled out."""
    problems = []
    for k, shape in expected.items():
        if k not in state:
            problems.append(f"missing tensor '{k}' (expected shape {list(shape)})")
        elif tuple(state[k].shape) != tuple(shape):
            problems.append(f"tensor '{k}': expected shape {list(shape)}, found {list(state[k].shape)}")
    problems += [f"unexpected tensor '{k}' (shape {list(state[k].shape)})" for k in state if k not in expected]
    if problems:
        head = "; ".join(problems[:4]) + (f"; ... ({len(problems)} in all)" if len(problems) > 4 else "")
        raise CheckpointError(f"{len(problems)} problem(s) against the architecture: {head}")


def save_atomic(obj, path):
    """torch.save to PATH.tmp.PID, then rename: a crash never leaves a half-written state."""
    import torch

    tmp = f"{path}.tmp.{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
