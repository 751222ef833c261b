"""The ``spiknerf`` command: ``train | render | eval | view | export ... | process | bench classify | bench temporal``.

Each job lives in its own module as a small config dataclass plus ``main(cfg)``;
this file only turns dataclass fields into command-line options and maps bad
input (:class:`spiknerf.errors.InputError`) and failures of the file system to one
``error: ...`` line and exit 2. Float options refuse NaN and infinities.
Field metadata may carry ``help``, ``choices``, ``flag`` (an alternative
option name such as ``--no-kd``) and ``group`` (the heading of ``--help`` the
option is listed under); a field that is itself a dataclass contributes its
fields as options.

Every command takes ``--threads N`` (a job's own ``threads`` field, where it
has one, else an option added here). The threading (:mod:`spiknerf.threads`)
is set up before the job's module, and with it torch, is imported: OpenMP reads
its wait settings only when it loads. The job runs with denormal floats
flushed to zero (:mod:`spiknerf.denormals`), set before it does any torch
work, so that every thread of its process has that mode.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import typing
from collections.abc import Iterator, Sequence

from spiknerf import denormals, threads
from spiknerf.config import field_type, finite_float
from spiknerf.errors import InputError

# command path -> (module, config class name); a job's module is imported only
# when that job runs, so `spiknerf bench ...` does not pay for the NeRF stack.
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("train",): ("spiknerf.nerf.train", "TrainConfig"),
    ("render",): ("spiknerf.nerf.render_video", "RenderConfig"),
    ("eval",): ("spiknerf.nerf.evaluate", "EvalConfig"),
    ("view",): ("spiknerf.viewer.view", "ViewConfig"),
    ("export", "mesh"): ("spiknerf.export.mesh", "MeshConfig"),
    ("export", "pointcloud"): ("spiknerf.export.pointcloud", "PointCloudConfig"),
    ("export", "depth"): ("spiknerf.export.depth", "DepthConfig"),
    ("export", "nir"): ("spiknerf.export.neuromorphic", "NIRConfig"),
    ("process",): ("spiknerf.capture.process", "ProcessConfig"),
    ("bench", "classify"): ("spiknerf.bench.classify", "ClassifyConfig"),
    ("bench", "temporal"): ("spiknerf.bench.temporal", "TemporalConfig"),
}
SUMMARIES: dict[tuple[str, ...], str] = {
    ("train",): "train the teacher and the spiking student, evaluate, render a video",
    ("render",): "render a video of novel views from a run",
    ("eval",): "evaluate a run on its test split and write metrics.json",
    ("view",): "look at a run's models in a web browser, live: colour, depth, spikes, energy",
    ("export", "mesh"): "a coloured triangle mesh of a run's density (.ply, .obj, .glb)",
    ("export", "pointcloud"): "a coloured point cloud from the rendered depth of a run's training views",
    ("export", "depth"): "expected depth and opacity of each test view (16-bit PNG and .npy)",
    ("export", "nir"): "the spiking student as a NIR graph for neuromorphic hardware, checked by a round trip",
    ("process",): "estimate camera poses for your photos or video (pycolmap) and write a scene folder",
    ("bench", "classify"): "classification benchmarks of SNN neurons and training methods",
    ("bench", "temporal"): "temporal benchmarks with heterogeneous synapses",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad options as one line and exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message}\n")


def _finite_float(text: str) -> float:
    """A float option's value; argparse reports a refusal as ``argument --x: <reason>``."""
    try:
        return finite_float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def option_fields(cls: type, group: str | None = None) -> Iterator[tuple[dataclasses.Field, type, str | None]]:
    """(field, scalar type, group) of each option of the dataclass ``cls``: the fields of a field that is itself
    a dataclass stand among the others (flattened), in that field's group unless they name their own."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, _ = field_type(hints[f.name])
        in_group = f.metadata.get("group", group)
        if dataclasses.is_dataclass(tp):
            yield from option_fields(tp, in_group)
        else:
            yield f, tp, in_group


def add_dataclass_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one option per field of the dataclass ``cls``; fields without a default are required.

    A field's ``group`` metadata lists its option under that heading of ``--help``
    (in the order the groups first appear); fields without one are listed first.
    """
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f, tp, group in option_fields(cls):
        if group is not None and group not in groups:
            groups[group] = parser.add_argument_group(group)
        target = parser if group is None else groups[group]
        meta = dict(f.metadata)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else (
            f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
        name = "--" + f.name.replace("_", "-")
        help_text = meta.get("help", "")
        if tp is bool:
            flag = meta.get("flag")
            if flag:  # e.g. field kd=True exposed as --no-kd
                target.add_argument(flag, dest=f.name, action="store_const", const=not default,
                                    default=default, help=help_text)
            else:
                target.add_argument(name, dest=f.name, action=argparse.BooleanOptionalAction,
                                    default=default, help=help_text)
            continue
        kwargs: dict[str, typing.Any] = dict(type=_finite_float if tp is float else tp, help=help_text if required else
                                             f"{help_text} (default: {default})".strip())
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        target.add_argument(name, dest=f.name, **kwargs)


def config_from_options(cls: type, values: dict[str, typing.Any]) -> typing.Any:
    """An instance of the dataclass ``cls`` from parsed options (``values`` keyed by field name, flattened as
    :func:`add_dataclass_options` flattens them)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        tp, _ = field_type(hints[f.name])
        kwargs[f.name] = config_from_options(tp, values) if dataclasses.is_dataclass(tp) else values[f.name]
    return cls(**kwargs)


def _top_parser() -> argparse.ArgumentParser:
    """The command list, without any job's options (those load with the job)."""
    parser = _Parser(prog="spiknerf", description="Spiking neural radiance fields and SNN benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    groups: dict[str, argparse._SubParsersAction] = {}
    for path in COMMANDS:
        if len(path) == 1:
            sub.add_parser(path[0], help=SUMMARIES[path])
            continue
        if path[0] not in groups:
            jobs = ", ".join(p[1] for p in COMMANDS if p[0] == path[0])
            group = sub.add_parser(path[0], help=f"{path[0]} jobs: {jobs}")
            groups[path[0]] = group.add_subparsers(dest="subcommand", required=True, parser_class=_Parser)
        groups[path[0]].add_parser(path[1], help=SUMMARIES[path])
    return parser


# the packages of optional extras, by the command group that needs them
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "spiknerf.export": ("export", ("skimage", "trimesh", "nir", "scipy", "h5py")),
}


def import_job(module_name: str) -> typing.Any:
    """The job's module; a missing package of an optional extra exits 2 with one line saying what to install."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        for prefix, (extra, packages) in EXTRAS.items():
            if module_name.startswith(prefix) and (exc.name or "").split(".")[0] in packages:
                print(f"error: this command needs the {extra!r} extra (no module {exc.name!r}): "
                      f"pip install 'spiknerf[{extra}]'", file=sys.stderr)
                raise SystemExit(2) from None
        raise


def requested_threads(args: Sequence[str]) -> int:
    """The ``--threads`` value among a command's arguments, read before the job (and torch) loads; 0 (automatic)
    when absent, negative or unreadable (the job's own parser then reports a bad one)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--threads", type=int, default=0)
    try:
        ns, _ = parser.parse_known_args(args)
    except SystemExit:
        return 0
    return max(ns.threads, 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spiknerf`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    path = next((p for p in COMMANDS if tuple(argv[: len(p)]) == p), None)
    environ, torch_loaded = dict(os.environ), "torch" in sys.modules
    try:  # argparse reports --help and bad options by SystemExit; return its code instead
        if path is None:
            _top_parser().parse_args(argv)
            return 2
        threads.setup(requested_threads(argv[len(path):]))
        module_name, cls_name = COMMANDS[path]
        job = import_job(module_name)
        cls = getattr(job, cls_name)
        parser = _Parser(prog="spiknerf " + " ".join(path), description=SUMMARIES[path])
        add_dataclass_options(parser, cls)
        own_threads = "threads" in {f.name for f, _, _ in option_fields(cls)}
        if not own_threads:
            parser.add_argument("--threads", type=int, default=0, help=f"{threads.THREADS_HELP} (default: 0)")
        ns = parser.parse_args(argv[len(path):])
    except SystemExit as exc:
        return int(exc.code or 0)
    values = vars(ns)
    requested = values["threads"] if own_threads else values.pop("threads")
    try:
        # the final parse's --threads (the job's own default, say) over the early look, as the process started
        choice, _ = threads.plan(max(requested, 0) if own_threads else requested, environ, torch_loaded)
        cfg = config_from_options(cls, values)
        if getattr(cfg, "nproc", 1) > 1:  # a job of several processes: start them, each runs this command
            from spiknerf.distributed import launch, launched

            if not launched():
                getattr(cfg, "validate", lambda: None)()  # bad options are reported once, before any process starts
                return launch(argv, cfg.nproc)
        with threads.held(choice), denormals.flushed():  # before the job's first torch work
            code = job.main(cfg)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the file system failed where no job caught it (a full disk, a vanished folder)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
