"""Paths named by a scene's files stay inside the scene folder.

A scene folder may come from a stranger, and its files name other files
(``file_path`` in ``transforms*.json``, the ``images_N/`` folders of LLFF). Every
such name goes through :meth:`SceneFolder.file`:

* it must be a relative path without ``..`` components (and without NUL bytes);
  absolute paths and ``..`` are refused by looking at the text alone, before
  the file system is asked anything;
* symlinks inside the folder are followed only when their resolved target lies
  inside the folder too. The folder given on the command line may itself be a
  symlink: its resolved location is the boundary.

The refusal reads the same whether or not the outside file exists, so a scene
cannot probe the machine for files. The folder is assumed not to change while
it loads.
"""

from __future__ import annotations

import os
import reprlib
from pathlib import Path, PurePosixPath

from spiknerf.errors import InputError

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 160  # whole paths, still one bounded line


def shown(value: object, quoted: bool = True) -> str:
    """A bounded, one-line ``repr`` for error messages: a hostile value may be huge, nested or hold newlines.

    ``quoted=False`` drops the quotes around a string.
    """
    text = _repr.repr(value)
    return text[1:-1] if not quoted and isinstance(value, str) else text


class SceneFolder:
    """A scene folder as given (``path``, used in messages and names) and its resolved location (``root``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.root = Path(os.path.realpath(self.path))

    def file(self, entry: str, where: str) -> Path:
        """``path / entry`` after checking that it resolves inside the folder; its existence is not checked.

        ``where`` starts the error message (e.g. ``".../transforms.json: frame 3: file_path"``).
        """
        relative = PurePosixPath(entry) if isinstance(entry, str) else None
        if (
            relative is None
            or "\x00" in entry
            or relative.is_absolute()
            or ".." in relative.parts
            or not relative.parts
            or not self._inside(os.path.realpath(self.root.joinpath(*relative.parts)))
        ):
            raise InputError(
                f"{where} {shown(entry)} is outside the scene folder {self.path} "
                "(paths must be relative, without '..', and symlinks must stay inside the folder)"
            )
        return self.path.joinpath(*relative.parts)

    def existing_file(self, entry: str, where: str) -> Path | None:
        """:meth:`file` if it names a regular file (a FIFO or device would block or never end), else None."""
        path = self.file(entry, where)
        try:
            return path if path.is_file() else None
        except OSError:  # a name too long, a folder without permission: not a file this scene can use
            return None

    def _inside(self, resolved: str) -> bool:
        return Path(resolved).is_relative_to(self.root) and Path(resolved) != self.root
