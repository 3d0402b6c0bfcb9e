"""Worst-case stack depth from GCC's call graphs (`-fstack-usage -fcallgraph-info=su`, one `.ci` file per object).

A firmware task's stack must hold the deepest chain of frames below its entry function. GCC writes, per compiled
file, each function's frame size and its direct calls (VCG text). This module merges those files into one graph
and answers two questions: the deepest chain from a function down (`worst_from`), and the deepest chain from a task's
entry to a given callee (`deepest_path_to`, for calls the graph cannot follow, such as the Crazyflie's controller
table of function pointers). Functions without a frame record (library and built-in calls) count 0 bytes and are
listed in `unknown`; a recursive cycle is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from raptor.errors import ConfigError

_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_BYTES = re.compile(r"\\n(\d+) bytes \(([a-z,]+)\)")


@dataclass
class CallGraph:
    frames: dict[str, int] = field(default_factory=dict)  # node title -> frame bytes (functions compiled here)
    qualifiers: dict[str, str] = field(default_factory=dict)  # "static", "dynamic", "dynamic,bounded"
    calls: dict[str, set[str]] = field(default_factory=dict)  # caller title -> callee titles
    names: dict[str, str] = field(default_factory=dict)  # title -> bare function name

    def resolve(self, name: str) -> str:
        """The title of the function `name`: a global definition first, else a unique file-local one."""
        if name in self.frames:
            return name
        local = [t for t, n in self.names.items() if n == name and t in self.frames]
        if len(local) == 1:
            return local[0]
        raise ConfigError(f"call graph: function {name!r} {'is defined more than once' if local else 'not found'}"
                          " (was it compiled with -fcallgraph-info=su?)")

    def _callee(self, title: str) -> str:
        """A call to an undefined title (another file's function) goes to its definition when there is one."""
        if title in self.frames:
            return title
        try:
            return self.resolve(self.names.get(title, title))
        except ConfigError:
            return title

    def worst_from(self, name: str) -> tuple[int, list[str]]:
        """(bytes, chain of function names) of the deepest call chain starting at `name`, its own frame included."""
        memo: dict[str, tuple[int, list[str]]] = {}

        def visit(t: str, stack: tuple[str, ...]) -> tuple[int, list[str]]:
            if t in stack:
                raise ConfigError(f"call graph: recursion through {self.names.get(t, t)}; no bounded stack depth")
            if t not in memo:
                best = (0, [])
                for c in sorted(self.calls.get(t, ())):
                    best = max(best, visit(self._callee(c), stack + (t,)), key=lambda r: r[0])
                memo[t] = (self.frames.get(t, 0) + best[0], [self.names.get(t, t)] + best[1])
            return memo[t]

        return visit(self.resolve(name), ())

    def deepest_path_to(self, root: str, target: str) -> tuple[int, list[str]]:
        """(bytes, chain) of the deepest direct-call chain from `root` to `target`, frames of both ends included."""
        goal = self.resolve(target)
        memo: dict[str, tuple[int, list[str]] | None] = {}

        def visit(t: str, stack: tuple[str, ...]) -> tuple[int, list[str]] | None:
            if t == goal:
                return self.frames.get(t, 0), [self.names.get(t, t)]
            if t in stack:
                return None
            if t not in memo:
                best = None
                for c in sorted(self.calls.get(t, ())):
                    r = visit(self._callee(c), stack + (t,))
                    if r is not None and (best is None or r[0] > best[0]):
                        best = r
                memo[t] = None if best is None else (self.frames.get(t, 0) + best[0], [self.names.get(t, t)] + best[1])
            return memo[t]

        found = visit(self.resolve(root), ())
        if found is None:
            raise ConfigError(f"call graph: {target} is not reached from {root} by direct calls")
        return found

    def dynamic(self, chain: list[str]) -> list[str]:
        """Functions of a chain whose frame GCC could not bound (alloca, VLAs): their figure is a lower bound."""
        return [n for n in chain if "dynamic" in self.qualifiers.get(self._title(n), "") and
                "bounded" not in self.qualifiers.get(self._title(n), "")]

    def _title(self, name: str) -> str:
        try:
            return self.resolve(name)
        except ConfigError:
            return name


def load_callgraph(paths: list[Path]) -> CallGraph:
    """Merge GCC `.ci` files into one graph."""
    g = CallGraph()
    if not paths:
        raise ConfigError("call graph: no .ci files (compile with -fstack-usage -fcallgraph-info=su)")
    for path in paths:
        text = Path(path).read_text(errors="replace")
        for title, label in _NODE.findall(text):
            g.names.setdefault(title, label.split("\\n", 1)[0])
            m = _BYTES.search(label)
            if m:
                g.frames[title] = int(m.group(1))
                g.qualifiers[title] = m.group(2)
        for src, dst in _EDGE.findall(text):
            g.calls.setdefault(src, set()).add(dst)
    return g
