"""Import Lava on Python 3.11 without touching site-packages.

lava-nc 0.10.0 declares Python < 3.11.  On 3.11 exactly one module fails to import:
``lava/magma/compiler/var_model.py`` gives dataclass fields an instance of the (unhashable)
dataclass ``ByteEncoder`` as default, which Python 3.11 rejects.  A meta-path finder of ours loads
that module from its unmodified source with such defaults rewritten to
``field(default_factory=...)`` in the syntax tree.

The same finder makes Lava importable after other libraries used multiprocessing: Lava's
``message_infrastructure/multiprocessing.py`` calls ``mp.set_start_method('fork')`` at import,
which raises once anything (tqdm's write lock, for one) has fixed the start method; we make that
call ``force=True`` (fork is the Linux default that Lava relies on anyway).

Everything that imports Lava in this project goes through :func:`import_lava`, which installs
the finder first.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import signal
import sys
import threading
from types import ModuleType

VAR_MODEL = "lava.magma.compiler.var_model"
MESSAGING = "lava.magma.runtime.message_infrastructure.multiprocessing"

INSTALL_HINT = (
    "Lava is not installed: run `make install` (Python 3.11), or "
    "`pip install --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0` "
    "plus `pip install -e '.[lava]'`"
)


class LavaUnavailableError(ImportError):
    """Lava (lava-nc) cannot be imported in this environment."""


class _DataclassDefaultsFix(ast.NodeTransformer):
    """Turns ``x: T = C()`` in a dataclass into ``x: T = field(default_factory=C)``.

    Only for ``C`` a dataclass of the same module called without arguments: the default instance
    Python 3.11 refuses as mutable.
    """

    def __init__(self, dataclass_names: set[str]) -> None:
        self.dataclass_names = dataclass_names
        self.rewritten: list[str] = []

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AnnAssign:
        value = node.value
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in self.dataclass_names
            and not value.args
            and not value.keywords
        ):
            factory = ast.Call(
                func=ast.Attribute(
                    value=ast.Call(
                        func=ast.Name("__import__", ast.Load()),
                        args=[ast.Constant("dataclasses")],
                        keywords=[],
                    ),
                    attr="field",
                    ctx=ast.Load(),
                ),
                args=[],
                keywords=[ast.keyword("default_factory", ast.Name(value.func.id, ast.Load()))],
            )
            node.value = ast.copy_location(factory, value)
            self.rewritten.append(ast.unparse(node.target))
        return node


def _is_dataclass_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (isinstance(target, ast.Name) and target.id == "dataclass") or (
        isinstance(target, ast.Attribute) and target.attr == "dataclass"
    )


class _ForceStartMethod(ast.NodeTransformer):
    """``mp.set_start_method('fork')`` -> ``mp.set_start_method('fork', force=True)``."""

    def visit_Call(self, node: ast.Call) -> ast.Call:
        if (isinstance(node.func, ast.Attribute) and node.func.attr == "set_start_method"
                and not any(k.arg == "force" for k in node.keywords)):
            node.keywords.append(ast.keyword("force", ast.Constant(True)))
        return node


def fix_dataclass_defaults(tree: ast.Module) -> ast.Module:
    """``tree`` with mutable dataclass-instance defaults made factories."""
    names = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and any(map(_is_dataclass_decorator, node.decorator_list))
    }
    return _DataclassDefaultsFix(names).visit(tree)


FIXES = {VAR_MODEL: fix_dataclass_defaults, MESSAGING: _ForceStartMethod().visit}


class _FixingLoader(importlib.machinery.SourceFileLoader):
    """Compiles the fixed tree from source every time; never reads or writes bytecode caches."""

    def get_code(self, fullname: str):
        tree = FIXES[fullname](ast.parse(self.get_data(self.path), self.path))
        return compile(ast.fix_missing_locations(tree), self.path, "exec", dont_inherit=True)


class _LavaFixFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in FIXES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_FixingLoader(fullname, spec.origin)
        )


def install_import_fix() -> None:
    """Put the finder first on ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(finder, _LavaFixFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LavaFixFinder())


def import_lava(module: str = "lava.magma.core.run_configs") -> ModuleType:
    """Import a Lava (or lava-dl) module with the Python 3.11 fix in place.

    Raises :class:`LavaUnavailableError` with install instructions when lava-nc is missing.
    """
    install_import_fix()
    if importlib.util.find_spec("lava") is None or importlib.util.find_spec("lava.magma") is None:
        raise LavaUnavailableError(INSTALL_HINT)
    return importlib.import_module(module)


def run_checked(process, condition, run_cfg) -> None:
    """``process.run(...)``, re-raising a process model's own exception instead of Lava's summary.

    Lava reports a failing process model as ``RuntimeError('1 Exception(s) occurred...')`` and
    logs the cause at INFO level; the cause (e.g. an overflow naming a layer) is what users need.
    """
    try:
        process.run(condition=condition, run_cfg=run_cfg)
    except RuntimeError:
        messaging = getattr(process.runtime, "_messaging_infrastructure", None)
        causes = [a.exception[0] for a in getattr(messaging, "actors", []) if getattr(a, "exception", None)]
        if causes:
            raise causes[0] from None
        raise


@contextlib.contextmanager
def _interrupts_held():
    """SIGINT blocked, so that every process forked meanwhile inherits it blocked (and never gets
    one); in this process a Ctrl-C meanwhile is held and raised at the end of the block."""
    held: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda signum, _: held.append(signum)) if main else None
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending SIGINT reaches `held` now
        if main and previous is not None:
            signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)


def create_runtime(process, run_cfg) -> None:
    """``process.create_runtime(run_cfg)``, Lava's processes forked deaf to Ctrl-C.

    A terminal's Ctrl-C reaches the whole process group.  Lava's forked processes would die of it
    in the middle of a step; the host could then never stop the runtime (it waits for their
    answer) nor release the runtime's shared memory, and hung on exit until a second Ctrl-C.
    Forked with SIGINT blocked, they keep running until the host, interrupted alone, stops them;
    a Ctrl-C during the start-up is raised once the runtime is up.
    """
    with _interrupts_held():
        process.create_runtime(run_cfg=run_cfg)
