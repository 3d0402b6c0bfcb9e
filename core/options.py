"""Command-line options generated from config dataclasses: one table per command names the fields a user may set
(and the flag, where it is not the field's name), and the flag's type, default and help come from the dataclass.

    FLAGS = (Flag("steps", help="env steps per teacher"), Flag("ppo.envs_per_teacher", "--envs", ...), ...)
    add_flags(parser, TrainConfig, FLAGS)          # --steps N (default 5000000) ...
    over = given(args, FLAGS)                      # {"steps": 100000} for the flags on the command line
    cfg = with_overrides(TrainConfig(), over)      # nested fields ("ppo.envs_per_teacher") included

Flags default to None, so "given" means "on the command line"; the config's default shows in the help.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from raptor.errors import ConfigError


@dataclass(frozen=True)
class Flag:
    field: str  # the config field; "ppo.envs_per_teacher" for a field of a nested config
    flag: str | None = None  # default: --field-name
    help: str = ""
    metavar: str | None = None
    choices: tuple | None = None
    shown_default: str | None = None  # the default as the help shows it (default: the config's)

    @property
    def option(self) -> str:
        return self.flag or "--" + self.field.split(".")[-1].replace("_", "-")

    @property
    def dest(self) -> str:
        return self.option.lstrip("-").replace("-", "_")


def _field_type(cls, path: str):
    """(type, default) of a dotted field of a dataclass."""
    *outer, name = path.split(".")
    for part in outer:
        cls = typing.get_type_hints(cls)[part]
    hints = typing.get_type_hints(cls)
    if name not in hints:
        raise AttributeError(f"{cls.__name__} has no field {name!r}")
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    default = f.default if f.default is not dataclasses.MISSING else (
        f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
    return hints[name], default


def _parser_for(tp) -> tuple[Callable[[str], object], bool]:
    """(text -> value, is_bool) for a field type: int, float, str, bool, X | None, tuple[X, ...]."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _parser_for(args[0])
    if origin is tuple:
        item = typing.get_args(tp)[0]

        def parse_list(text: str):
            try:
                return tuple(item(x.strip()) for x in text.split(",") if x.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected a comma-separated list of {item.__name__}, "
                                                 f"got {text!r}") from None
        return parse_list, False
    if tp is bool:
        return bool, True
    if tp in (int, float, str):
        return tp, False
    return str, False  # Literal[...] and the like: checked by the config


def add_flags(parser: argparse.ArgumentParser, cls, flags: Sequence[Flag]) -> None:
    """Add one option per Flag: type and default from the dataclass `cls`; booleans are switches."""
    for fl in flags:
        tp, default = _field_type(cls, fl.field)
        parse, is_bool = _parser_for(tp)
        shown = fl.shown_default if fl.shown_default is not None else (
            ",".join(map(str, default)) if isinstance(default, tuple) else default)
        help_text = fl.help + ("" if is_bool or shown is None else f" (default {shown})")
        if is_bool and default is True:  # a switch that turns it off
            parser.add_argument(fl.flag or "--no-" + fl.option[2:], dest=fl.dest, action="store_false", default=None,
                                help=help_text)
        elif is_bool:
            parser.add_argument(fl.option, dest=fl.dest, action="store_true", default=None, help=help_text)
        else:
            parser.add_argument(fl.option, dest=fl.dest, type=parse, default=None, metavar=fl.metavar,
                                choices=fl.choices, help=help_text)


def given(args: argparse.Namespace, flags: Sequence[Flag]) -> dict[str, object]:
    """{field: value} for the flags given on the command line."""
    return {fl.field: getattr(args, fl.dest) for fl in flags if getattr(args, fl.dest, None) is not None}


def with_overrides(config, overrides: dict[str, object]):
    """A copy of the frozen dataclass `config` with dotted fields replaced (the config checks the values)."""
    top: dict[str, object] = {}
    nested: dict[str, dict[str, object]] = {}
    for path, value in overrides.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[head] = value
    for head, sub in nested.items():
        top[head] = with_overrides(getattr(config, head), sub)
    try:
        return dataclasses.replace(config, **top)
    except TypeError as e:
        raise ConfigError(f"{type(config).__name__}: {e}") from None


def _shown(value) -> object:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def resume_changes(config, over: dict[str, object], flags: Sequence[Flag], resumable: Sequence[str], what: str,
                   hint: str, notes: dict[str, str] | None = None
                   ) -> tuple[dict[str, tuple[object, object]], list[str]]:
    """The flags given with a --resume that differ from the stored frozen `config`: ({field: (stored, given)}, one
    'resume: --epochs 3 (was 2)' line each, plus `notes[field]` where given). Tuples and lists compare equal; dotted
    fields reach nested configs. Only `resumable` fields (where and how long a run goes on) may change; the first
    other one is refused in one line, never dropped without a word: 'a resumed {what} keeps its recipe: --lr is
    0.001 in this run, not 0.0005; drop --lr ({hint}; another recipe needs another --out)'."""
    options = {fl.field: fl.option for fl in flags}
    changes: dict[str, tuple[object, object]] = {}
    for path, value in over.items():
        old = config
        for part in path.split("."):
            old = getattr(old, part)
        if (list(value) if isinstance(value, tuple) else value) != (list(old) if isinstance(old, tuple) else old):
            changes[path] = (old, value)
    for path, (old, value) in changes.items():
        if path not in resumable:
            option = options.get(path, "--" + path)
            raise ConfigError(f"a resumed {what} keeps its recipe: {option} is {_shown(old)} in this run, not "
                              f"{_shown(value)}; drop {option} ({hint}; another recipe needs another --out)")
    lines = [f"resume: {options.get(k, '--' + k)} {_shown(v)} (was {_shown(old)})" + (notes or {}).get(k, "")
             for k, (old, v) in changes.items()]
    return changes, lines
