"""The ``spiknerf`` command: ``train | render | eval | bench classify | bench temporal``.

Each job lives in its own module as a small config dataclass plus ``main(cfg)``;
this file only turns dataclass fields into command-line options and maps bad
input (:class:`spiknerf.errors.InputError`) to one ``error: ...`` line and exit 2.
Field metadata may carry ``help``, ``choices``, ``flag`` (an alternative option
name such as ``--no-kd``) and ``positional``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import typing
from collections.abc import Sequence

from spiknerf.errors import InputError

# command path -> (module, config class name); modules are imported on use so
# that `spiknerf bench ...` does not pay for the NeRF stack and vice versa.
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("train",): ("spiknerf.nerf.train", "TrainConfig"),
    ("render",): ("spiknerf.nerf.video", "RenderConfig"),
    ("eval",): ("spiknerf.nerf.evaluate", "EvalConfig"),
    ("bench", "classify"): ("spiknerf.bench.classify", "ClassifyConfig"),
    ("bench", "temporal"): ("spiknerf.bench.temporal", "TemporalConfig"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad options as one line and exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message}\n")


def _option_type(tp: object) -> tuple[type, bool]:
    """(scalar type, is_optional) of a dataclass field annotation."""
    if isinstance(tp, str):
        tp = eval(tp, {"typing": typing})  # annotations are postponed strings
    args = typing.get_args(tp)
    if type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return inner[0], True
    return tp, False  # type: ignore[return-value]


def add_dataclass_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one option per field of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, _ = _option_type(hints[f.name])
        meta = dict(f.metadata)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        name = "--" + f.name.replace("_", "-")
        help_text = meta.get("help", "")
        if tp is bool:
            flag = meta.get("flag")
            if flag:  # e.g. field kd=True exposed as --no-kd
                parser.add_argument(flag, dest=f.name, action="store_const", const=not default,
                                    default=default, help=help_text)
            else:
                parser.add_argument(name, dest=f.name, action=argparse.BooleanOptionalAction,
                                    default=default, help=help_text)
            continue
        kwargs = dict(type=tp, default=default, help=f"{help_text} (default: {default})".strip())
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        if meta.get("positional"):
            parser.add_argument(f.name, **kwargs)
        else:
            parser.add_argument(name, dest=f.name, **kwargs)


def _build_parser() -> tuple[argparse.ArgumentParser, dict[tuple[str, ...], type]]:
    parser = _Parser(prog="spiknerf", description="Spiking neural radiance fields and SNN benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    groups: dict[str, argparse._SubParsersAction] = {}
    configs: dict[tuple[str, ...], type] = {}
    for path, (module_name, cls_name) in COMMANDS.items():
        cls = getattr(importlib.import_module(module_name), cls_name)
        configs[path] = cls
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        if len(path) == 1:
            p = sub.add_parser(path[0], help=doc, description=doc)
        else:
            if path[0] not in groups:
                g = sub.add_parser(path[0], help=f"{path[0]} jobs")
                groups[path[0]] = g.add_subparsers(dest="subcommand", required=True, parser_class=_Parser)
            p = groups[path[0]].add_parser(path[1], help=doc, description=doc)
        add_dataclass_options(p, cls)
        p.set_defaults(_path=path)
    return parser, configs


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spiknerf`` console script; returns the exit code."""
    parser, configs = _build_parser()
    ns = parser.parse_args(argv)
    path = ns._path
    cls = configs[path]
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)}
    job = importlib.import_module(COMMANDS[path][0])
    try:
        cfg = cls(**values)
        code = job.main(cfg)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
