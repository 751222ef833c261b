"""Several processes as one job (torch.distributed: gloo on the CPU, NCCL on CUDA), and one process as before.

A job runs under ``torchrun`` (or ``spiknerf ... --nproc N``, which starts the
same through torch's launcher, :func:`launch`): each process is a *rank*, rank 0
the first. Everything here is a no-op in a single process, so that the code that
calls it reads the same either way and a single process computes bit for bit
what it computed before this module existed.

The rules the training loop keeps (``spiknerf/nerf/train.py``):

* *One global batch.* Every rank draws the same global batch from the same
  random stream (seeded by ``--seed``) and keeps its share of the rays
  (:func:`share`). N processes therefore train on exactly the rays one process
  would, only split, and need no other learning rate; a resumed run continues
  the same stream with any number of processes.
* *Averaged gradients.* The model is wrapped in DistributedDataParallel
  (:func:`wrap`); each rank weighs its loss by its share of the global rays
  (and samples), so that DDP's average is the loss one process would have.
* *One occupancy grid.* Each rank evaluates the density at its share of the
  grid's cells and all of them gather the rest (:func:`sharded`): every rank
  applies the same values and the grids stay identical bit for bit.
* *One writer.* Rank 0 alone writes (:func:`is_first`); evaluation and
  rendering split views across ranks and gather them on rank 0 (:func:`gathered`).
* *No hang.* Every collective has the process group's timeout
  (``SPIKNERF_DIST_TIMEOUT`` seconds, default :data:`DEFAULT_TIMEOUT`); a rank
  that finds a peer gone stops (:func:`session`), and the launcher reports the
  first failure in one ``error:`` line.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from spiknerf.errors import InputError

T = TypeVar("T")
R = TypeVar("R")

# seconds a rank may wait for the others: while rank 0 alone loads a scene, saves, or finishes the metrics
# (operation counts, the fold check) the others wait at their next collective. A rank that dies is noticed at
# once (its connections close); the timeout bounds a rank that hangs.
DEFAULT_TIMEOUT = 1800.0
# exit code of a rank that stopped because another one failed: the launcher then reports the other one
PEER_LOST = 3
# what a collective says when its peer is gone or silent (gloo raises plain RuntimeErrors)
_PEER_MESSAGES = ("Connection closed by peer", "Connection reset by peer", "Timed out", "timed out", "NCCL")


def launched() -> bool:
    """Whether this process was started as one rank of a job (torchrun sets ``WORLD_SIZE`` and ``RANK``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def world() -> int:
    """Processes in the job (1 without one)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a job)."""
    return dist.get_rank() if dist.is_initialized() else 0


def is_first() -> bool:
    """Whether this process writes: rank 0, or the only process."""
    return rank() == 0


def timeout() -> float:
    """Seconds a collective waits (``SPIKNERF_DIST_TIMEOUT``)."""
    text = os.environ.get("SPIKNERF_DIST_TIMEOUT", str(DEFAULT_TIMEOUT))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise InputError(f"SPIKNERF_DIST_TIMEOUT={text!r:.40}: give the seconds a collective may wait (> 0)")
    return value


def _peer_lost(exc: BaseException) -> bool:
    return isinstance(exc, dist.DistError) or (
        isinstance(exc, RuntimeError) and any(m in str(exc) for m in _PEER_MESSAGES))


@contextmanager
def session(cuda: bool) -> Iterator[None]:
    """Join the job this process was launched into for the block (nothing without one): NCCL with ``cuda``
    (one GPU per local rank), else gloo.

    A peer that dies or stops answering ends this rank with exit code :data:`PEER_LOST`: quietly under a
    launcher, which reports the first failure; with one ``error:`` line otherwise. A rank other than 0 that
    finishes its work ends its process there, with exit code 0.
    """
    if not launched() or dist.is_initialized():
        yield
        return
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    wait = datetime.timedelta(seconds=timeout())
    try:
        dist.init_process_group("nccl" if cuda else "gloo", timeout=wait)
    except Exception as exc:  # a rendezvous that never completes, an address that cannot be bound
        raise InputError(f"cannot join the torch.distributed job: {str(exc)[:300]}") from None
    try:
        yield
    except Exception as exc:
        if not _peer_lost(exc):
            # this rank's own error (bad input, say): close the group before reporting it, since a gloo group
            # left to the interpreter's exit can abort the process after its peers have gone
            dist.destroy_process_group()
            raise
        if "TORCHELASTIC_RUN_ID" not in os.environ:
            print(f"error: rank {rank()}: another process of the job failed or stopped answering "
                  f"({str(exc).splitlines()[0][:200]})", file=sys.stderr)
        raise SystemExit(PEER_LOST) from None
    others = rank() != 0
    dist.destroy_process_group()
    if others:
        # rank 0 writes and reports everything; the others leave without the interpreter's teardown, where torch's
        # C++ threads (a gloo pair's, DDP's reducer's) were seen to call std::terminate (SIGABRT) after the work
        # was done, which failed the job
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _device() -> torch.device:
    """Where this job's collectives take their tensors: the rank's GPU under NCCL, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def share(n: int) -> slice:
    """This rank's contiguous part of ``n`` items (:func:`share_of`)."""
    return slice(*share_of(n, rank(), world()))


def share_of(n: int, r: int, size: int) -> tuple[int, int]:
    """(start, stop) of rank ``r``'s part of ``n`` items among ``size`` ranks; the first ranks take one more when
    ``n`` does not divide."""
    base, extra = divmod(n, size)
    start = r * base + min(r, extra)
    return start, start + base + (r < extra)


def total(*values: float) -> list[float]:
    """The sums of ``values`` over all ranks (float64; the values themselves in a single process)."""
    if world() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    return t.tolist()


def wrap(model: nn.Module) -> nn.Module:
    """``model`` for training: in a job, wrapped in DistributedDataParallel (gradients averaged over ranks; the
    buffers are not synchronised at each step: every rank keeps an identical copy); alone, itself."""
    if world() == 1:
        return model
    cuda = dist.get_backend() == "nccl"
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[torch.cuda.current_device()] if cuda else None, forward_sync_buffers=False)


def sharded(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``fn`` over a batch of points that all ranks hold alike, each rank evaluating its :func:`share` and
    gathering the others': every rank returns the same values (float32). ``fn`` itself in a single process."""
    if world() == 1:
        return fn

    def evaluate(x: Tensor) -> Tensor:
        n, size = len(x), world()
        parts = [slice(*share_of(n, r, size)) for r in range(size)]
        longest = max(p.stop - p.start for p in parts)
        mine = fn(x[share(n)]).float()
        padded = mine.new_zeros(longest, *mine.shape[1:])
        padded[: len(mine)] = mine
        pieces = [torch.empty_like(padded) for _ in range(size)]
        dist.all_gather(pieces, padded.to(_device()))
        return torch.cat([p[: s.stop - s.start] for p, s in zip(pieces, parts, strict=True)]).to(x.device)

    return evaluate


def gathered(fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
    """``fn`` of each item, in order, on rank 0; the work split across ranks (item i on rank i mod N).

    Results come to rank 0 a round of N items at a time, so that memory holds at
    most N of them; the other ranks do their items and yield nothing. ``fn``
    must return what pickles (CPU tensors: a CUDA tensor would unpickle on the
    sender's GPU). Alone: ``map(fn, items)``.
    """
    size, r = world(), rank()
    if size == 1:
        yield from map(fn, items)
        return
    for start in range(0, len(items), size):
        i = start + r
        mine = fn(items[i]) if i < len(items) else None
        inbox: list[Any] | None = [None] * size if r == 0 else None
        dist.gather_object(mine, inbox, dst=0)
        if inbox is not None:
            yield from inbox[: len(items) - start]


def first_decides(fn: Callable[[], T]) -> T:
    """Rank 0's ``fn()``, shared with every rank; if it raises, every other rank ends quietly (rank 0 reports
    the error and gives the job its exit code). ``fn()`` itself in a single process. The value must pickle."""
    if world() == 1:
        return fn()
    box: list[Any] = [None]
    if is_first():
        try:
            box[0] = ("ok", fn())
        except BaseException:
            dist.broadcast_object_list([("failed", None)], src=0)
            raise
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status != "ok":
        # rank 0 is reporting its error and closes its group first; leave quietly once it has, with exit code 0,
        # so that a launcher waits for rank 0's own code (a failure here would make it stop rank 0 before rank 0
        # exits with 2), and at once: a gloo group torn down by the interpreter after its peer has gone can
        # abort the process
        with suppress(Exception):
            dist.barrier()
        with suppress(Exception):
            dist.destroy_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return value


def first_then_others(fn: Callable[[], T]) -> T:
    """``fn()`` on every rank, rank 0's first (reading what a person gave, which rank 0 alone reports on): if it
    raises there, the other ranks stop quietly without trying. ``fn()`` itself in a single process."""
    if world() == 1:
        return fn()
    held: list[T] = []
    first_decides(lambda: held.append(fn()))
    return held[0] if held else fn()


def check_identical(what: str, tensors: Iterable[Tensor]) -> None:
    """Refuse to go on unless ``tensors`` hold the same bytes on every rank (nothing alone): a state that all
    ranks must share and that drifted apart is a bug to stop at, not to train on."""
    if world() == 1:
        return
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    digests: list[Any] = [None] * world()
    dist.all_gather_object(digests, digest.hexdigest())
    if len(set(digests)) > 1:
        raise RuntimeError(f"{what} differs across the ranks of the job (sha256 {', '.join(d[:12] for d in digests)})")


def barrier() -> None:
    """Wait until every rank has come here (nothing alone)."""
    if world() > 1:
        dist.barrier()


def check_nproc(nproc: int) -> None:
    """``--nproc`` under a launcher must agree with it (or be left at 1)."""
    if nproc < 1:
        raise InputError(f"--nproc must be >= 1 (got {nproc})")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if launched() and nproc not in (1, local):
        raise InputError(f"--nproc {nproc}: this process was started by torchrun with {local} process(es) "
                         "per node, which decides; leave --nproc out under torchrun")


def first_cause(failures: dict[int, Any]) -> tuple[int, Any]:
    """The failed rank that caused the others' failures, and its failure (``exitcode``, ``timestamp``): a rank
    that refused bad input (exit code 2, already reported) whatever the others did, since a peer left behind may
    die in any way, even before it; else the first failure that was not a consequence (a rank that stopped
    because a peer did, or that the launcher stopped)."""
    consequence = (PEER_LOST, -signal.SIGTERM)
    return min(failures.items(), key=lambda kv: (kv[1].exitcode != 2, kv[1].exitcode in consequence,
                                                 kv[1].timestamp))


def launch(argv: Sequence[str], nproc: int) -> int:
    """Run ``python -m spiknerf <argv>`` as ``nproc`` local ranks through torch's own launcher (as
    ``torchrun --standalone --nproc-per-node nproc``); returns the job's exit code.

    Without ``OMP_NUM_THREADS`` each process gets an equal share of the cores.
    When a rank fails the launcher stops the others; the first failure is
    reported in one ``error:`` line, unless that rank already reported it
    (exit code 2: bad input).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # its own warnings of each stop
    if "OMP_NUM_THREADS" not in os.environ:  # the processes share the cores (torchrun would give each one)
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                          start_method="spawn")
    try:
        elastic_launch(config, sys.executable)("-m", "spiknerf", *argv)
    except ChildFailedError as exc:
        failed_rank, failure = first_cause(exc.failures)
        code = failure.exitcode
        if code == 2:
            return 2
        if code == PEER_LOST:
            how = f"lost the others (one stopped answering for SPIKNERF_DIST_TIMEOUT={timeout():g} s)"
        elif code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        # on a line of its own: rank 0's progress bar may have been left mid-line
        print(f"\nerror: rank {failed_rank} of {nproc} (pid {failure.pid}) {how}; the job stopped", file=sys.stderr)
        return 1
    return 0
