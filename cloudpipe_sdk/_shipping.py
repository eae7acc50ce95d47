"""Which modules travel with a function job by value.

cloudpickle pickles a function of an importable module by reference (module name and
attribute), so the runner must be able to import that module. The runner image has the
standard library, cloudpickle and dill, and whatever the image added; it does not have
the user's own project. `ship_local_modules` finds the user's modules a call needs and
registers them with `cloudpickle.register_pickle_by_value`, so their code travels in the
job's payload:

- it starts from the function, its arguments and keyword arguments, and follows a
  function's globals (the names its code uses), closure cells, defaults, bound `self`
  and `functools.partial` parts to the modules they come from;
- a module is *local* when it has a source file outside the standard library and the
  interpreter's site directories (an editable install counts as local: the runner does
  not have it either); local modules are registered, and the modules (and the modules
  of the functions, classes and values) in their namespace are followed in turn, so
  `mypkg.core` brings `mypkg.util` along;
- installed packages (site-packages), the standard library and the SDK itself are never
  shipped by value: they belong in the image;
- the walk is bounded (`MAX_MODULES` modules and `MAX_OBJECTS` objects looked at per call);
  local modules left over when it stops are named in a RuntimeWarning.

Registration is process-wide and permanent (as with a direct call of
`register_pickle_by_value`); a module is walked once per process.
"""

from __future__ import annotations

import collections
import functools
import site
import sys
import sysconfig
import threading
import types
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle

MAX_MODULES = 256
MAX_OBJECTS = 4096
# Never by value: this SDK (and its wire code) and the serializers the runner carries.
NEVER_SHIPPED = frozenset({"cloudpipe_sdk", "cloudpipe_proto", "cloudpipe_common", "cloudpickle", "dill"})

_lock = threading.Lock()
_walked: set[str] = set()


@functools.cache
def installed_roots() -> tuple[Path, ...]:
    """The standard library and site directories of this interpreter, resolved."""
    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        paths.add(site.getusersitepackages())
    return tuple(Path(path).resolve() for path in paths if path)


def module_file(module: types.ModuleType) -> Path | None:
    """Where a module's source is: its `__file__`, or a namespace package's first path."""
    location = getattr(module, "__file__", None)
    if not location:
        search = getattr(module, "__path__", None)
        location = next(iter(search), None) if search is not None else None
    return Path(location).resolve() if location else None


def is_local(module: types.ModuleType) -> bool:
    """True for the user's own code: a module with a file outside the standard library
    and the site directories, and not this SDK or a serializer."""
    name = module.__name__
    top = name.partition(".")[0]
    if name == "__main__" or top in sys.stdlib_module_names or top in NEVER_SHIPPED:
        return False
    path = module_file(module)
    if path is None:
        return False
    return not any(path.is_relative_to(root) for root in installed_roots())


def ship_local_modules(roots: Iterable[Any]) -> list[str]:
    """Register by value every local module the objects in `roots` reach (see the
    module docstring); return the names registered by this call."""
    with _lock:
        return _Walk().run(roots)


class _Walk:
    def __init__(self) -> None:
        self.registered: list[str] = []
        self.seen_objects: set[int] = set()
        self.budget = MAX_OBJECTS

    def run(self, roots: Iterable[Any]) -> list[str]:
        # breadth first: the call's own modules before the ones they import, should the bound be hit
        pending_modules: collections.deque[types.ModuleType] = collections.deque()
        for root in roots:
            pending_modules.extend(self.modules_of(root, depth=0))
        walked = 0
        while pending_modules and walked < MAX_MODULES:
            module = pending_modules.popleft()
            if module.__name__ in _walked or not is_local(module):
                continue
            _walked.add(module.__name__)
            walked += 1
            if module.__name__ in sys.modules:
                cloudpickle.register_pickle_by_value(module)
                self.registered.append(module.__name__)
            for value in list(vars(module).values()):
                pending_modules.extend(self.modules_of(value, depth=2))
        left = sorted({m.__name__ for m in pending_modules if m.__name__ not in _walked and is_local(m)})
        if left:
            warnings.warn(
                f"cloudpipe: this call reaches more than {MAX_MODULES} of your own modules; these are not "
                f"shipped and must be importable in the job's image: {', '.join(left[:5])}"
                f'{", ..." if len(left) > 5 else ""} (docs/sdk.md, "Your own code and packages")',
                RuntimeWarning,
                stacklevel=4,
            )
        return self.registered

    def modules_of(self, obj: Any, depth: int) -> Iterator[types.ModuleType]:
        """The modules `obj` comes from; functions and containers are looked into
        (depth 0 and 1 only: the call's own objects, not everything a module holds)."""
        if self.budget <= 0 or id(obj) in self.seen_objects:
            return
        self.budget -= 1
        self.seen_objects.add(id(obj))
        if isinstance(obj, types.ModuleType):
            yield obj
            return
        home = getattr(obj, "__module__", None) if isinstance(obj, (type, types.FunctionType)) else None
        home = home or type(obj).__module__
        if isinstance(home, str) and (module := sys.modules.get(home)) is not None:
            yield module
        if depth > 1:
            return
        for part in _parts(obj):
            yield from self.modules_of(part, depth + 1)


def _parts(obj: Any) -> Iterator[Any]:
    """What pickling `obj` by value would also pickle, as far as modules go."""
    if isinstance(obj, types.FunctionType):
        namespace = obj.__globals__
        for name in _code_names(obj.__code__):
            if name in namespace:
                yield namespace[name]
        for cell in obj.__closure__ or ():
            try:
                yield cell.cell_contents
            except ValueError:  # an empty cell
                continue
        yield from obj.__defaults__ or ()
        yield from (obj.__kwdefaults__ or {}).values()
    elif isinstance(obj, types.MethodType):
        yield obj.__func__
        yield obj.__self__
    elif isinstance(obj, functools.partial):
        yield obj.func
        yield from obj.args
        yield from obj.keywords.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        yield from obj
    elif isinstance(obj, dict):
        yield from obj.values()
    elif isinstance(obj, type):
        for value in vars(obj).values():
            if isinstance(value, (types.FunctionType, staticmethod, classmethod)):
                yield getattr(value, "__func__", value)


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)
