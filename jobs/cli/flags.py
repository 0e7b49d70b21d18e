"""The kinds of flag the commands share: a flag reads as its name, kind, default and help."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class Flag(Protocol):
    """What click.option gives: a decorator that adds one flag to a command."""

    def __call__(self, command: F, /) -> F: ...


def defaulted(flag: str, kind: Any, default: Any, about: str | None = None, **more: Any) -> Flag:
    """A flag whose default `--help` shows; `dest` names the value when the flag's name does not."""
    names = (flag, more.pop("dest")) if "dest" in more else (flag,)
    return click.option(*names, type=kind, default=default, show_default=True, help=about, **more)


def switch(flag: str, about: str) -> Flag:
    """An on/off flag, off unless given."""
    return click.option(flag, is_flag=True, help=about)


def folder(flag: str, dest: str, about: str) -> Flag:
    """A folder that may not exist yet, kept under the name `dest`."""
    return click.option(flag, dest, type=click.Path(file_okay=False, path_type=Path), help=about)


def existing_file(flag: str, about: str, **more: Any) -> Flag:
    """A file that must exist when the command starts."""
    kind = click.Path(exists=True, dir_okay=False, path_type=Path)
    return click.option(flag, type=kind, help=about, **more)
