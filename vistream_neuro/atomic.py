"""Writing files and folders so that nothing partial is ever left looking complete.

Every writer builds its result under a temporary name beside the target and renames it into
place, so an interrupted or failed write leaves the previous file (or folder) untouched.  Files
get the permissions a plain ``open`` would give under the process's umask (``mkstemp`` alone would
make them private).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary_beside(path: Path, suffix: str = "") -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


def replace_file(path: str | Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Call ``write(tmp)`` to create a file at the temporary path ``tmp`` beside ``path``, then
    rename it over ``path``; on any failure (interruption included) the temporary file goes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(path, suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, write: Callable, binary: bool = False) -> None:
    """Call ``write(file)`` on an open temporary file (text, or bytes with ``binary``), then rename
    it over ``path``."""

    def fill(tmp: Path) -> None:
        with open(tmp, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
            write(f)

    replace_file(path, fill)


def write_h5_atomic(path: str | Path, write: Callable) -> None:
    """Call ``write(h5py.File)`` on a temporary HDF5 file, then rename it over ``path``."""
    import h5py

    def fill(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            write(f)

    replace_file(path, fill, suffix=".h5")


class FolderReplacement:
    """A folder built in a temporary sibling of ``target`` and swapped in whole by :meth:`commit`.

    The temporary folder is made at once, so an unwritable place fails before any work is done;
    until the swap ``target`` keeps what it held, and a failed or interrupted build leaves it
    untouched.  As a context manager it commits on success and discards on any exception.
    """

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target)
        if self.target.exists() and not self.target.is_dir():
            raise NotADirectoryError(f"{self.target}: exists and is not a folder")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", dir=self.target.parent))
        os.chmod(self.path, 0o777 & ~_umask())

    def commit(self) -> Path:
        old = self.target.parent / f".{self.target.name}.old"
        if self.target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.target, old)
        os.replace(self.path, self.target)
        shutil.rmtree(old, ignore_errors=True)
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> FolderReplacement:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def replace_folder(target: str | Path, build: Callable[[Path], None]) -> Path:
    """Build a folder by ``build(tmp)`` in a temporary folder beside ``target``, then swap it in for
    ``target`` (an existing one is replaced whole); a failed build leaves ``target`` untouched."""
    with FolderReplacement(target) as folder:
        build(folder.path)
    return folder.target


def check_writable(path: str | Path) -> None:
    """Raise an ``OSError`` naming ``path`` unless a file can be written there (tried, then removed):
    checked before work whose result would otherwise be lost."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    _temporary_beside(path).unlink()
