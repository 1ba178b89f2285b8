"""Run settings as dataclasses whose fields carry their default, help and resume rule; flags come from them.

A recipe's configuration is a dataclass built from `setting(...)` fields. `add_flags(parser, cls)` turns
each field into one command-line flag (`batch_size` -> `--batch-size`) whose argparse default is None, so
`given(args, cls)` can tell which settings the user typed. The value a run uses is layered:
the dataclass default < a preset (a pix2pix task, the demo instance) < what the user gave.

Every field states what may happen to it when a run is resumed with other flags (`on_resume`):
- `"change"`: takes effect from the resume step and is recorded (learning rate, loss weights, cadences);
- `"fixed"`: a different value makes the command refuse (architecture, batch, patch size, seed, data);
- `"free"`: how this process runs, not what it computes (progress bars, XLA), never compared.
"""
import argparse
import dataclasses

from common.errors import PhotoEnhanceError

RESUME_RULES = ("change", "fixed", "free")


def setting(default, help, *, on_resume="fixed", choices=None, kind=None, flag=True):
    """A dataclass field with its help text, resume rule, optional choices and value type (`kind`, needed
    when the default is None; `flag=False`: no flag)."""
    if on_resume not in RESUME_RULES:
        raise ValueError(f"on_resume must be one of {RESUME_RULES}, got {on_resume!r}")
    metadata = {"help": help, "on_resume": on_resume, "choices": choices, "flag": flag,
                "kind": kind or (type(default) if default is not None else str)}
    if isinstance(default, (list, dict, set)):
        raise TypeError("settings must be immutable; use a tuple")
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(name):
    return "--" + name.replace("_", "-")


def _flag_fields(cls):
    return [f for f in dataclasses.fields(cls) if f.metadata.get("flag", False)]


def add_flags(parser, cls, shown_defaults=None):
    """One flag per field of `cls` (argparse default None); help shows the default `cls` would use.

    `shown_defaults` maps field names to a text shown instead of the plain default (e.g. "preset; demo 200").
    """
    shown_defaults = shown_defaults or {}
    for f in _flag_fields(cls):
        meta = f.metadata
        shown = shown_defaults.get(f.name, f.default)
        text = f"{meta['help']} (default: {shown})"
        if isinstance(f.default, bool):
            parser.add_argument(flag_name(f.name), action=argparse.BooleanOptionalAction, default=None, help=text)
            continue
        parser.add_argument(flag_name(f.name), type=meta["kind"], default=None, choices=meta["choices"], help=text,
                            metavar=None if meta["choices"] else f.name.upper())
    return parser


def given(args, cls):
    """The settings of `cls` the user typed on the command line, as a dict."""
    return {f.name: getattr(args, f.name) for f in _flag_fields(cls) if getattr(args, f.name, None) is not None}


def layered(cls, *layers):
    """An instance of `cls` from its defaults overridden by each dict in `layers`, in order."""
    values = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for layer in layers:
        unknown = set(layer) - names
        if unknown:
            raise PhotoEnhanceError(f"unknown setting(s) {sorted(unknown)} for {cls.__name__}")
        values.update(layer)
    return cls(**values)


def differences(cls, old, new):
    """`{"fixed": [...], "change": [...]}`: (name, old value, new value) of settings that differ."""
    out = {"fixed": [], "change": []}
    for f in dataclasses.fields(cls):
        rule = f.metadata.get("on_resume", "fixed")
        if rule == "free" or f.name not in old:
            continue
        before, after = old[f.name], _plain(getattr(new, f.name))
        if before != after:
            out[rule].append((f.name, before, after))
    return out


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def as_dict(config):
    """The settings as JSON-ready plain values (tuples become lists)."""
    return {k: _plain(v) for k, v in dataclasses.asdict(config).items()}


def require_positive(config, names):
    """Refuse any of the named integer settings below 1, naming its flag."""
    for name in names:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise PhotoEnhanceError(f"{flag_name(name)} must be at least 1, got {value}")
