"""The package's import graph, read from the source (imports inside functions included): no
cycles, no job module reaches the planning package (``distillery.planning``), which only the
rules and the whole-config tools use, and the package root holds job entry points and a few shared
helpers, nothing else."""

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src"
PLANNING = "distillery.planning"
# shared by jobs of every stage: the error type, JSONL files, chunking, progress lines, prompts
ROOT_HELPERS = {"errors", "jsonl", "chunks", "progress", "prompts"}
# preflight checks of a whole config: they read it as the workflow does
CONFIG_TOOLS = {"distillery.doctor"}


def modules() -> dict[str, Path]:
    found = {}
    for path in (SOURCE / "distillery").rglob("*.py"):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its source."""
    found = modules()
    graph = {name: set() for name in found}
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            graph[name] |= {t for t in targets if t in found and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module."""
    order, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in order:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in order:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_the_import_graph_has_no_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def is_planning(name: str) -> bool:
    return name == PLANNING or name.startswith(PLANNING + ".")


def is_job(path: Path) -> bool:
    return 'if __name__ == "__main__":' in path.read_text()


def test_job_modules_never_reach_the_planner():
    graph = import_graph()
    planner = {name for name in graph if is_planning(name)}
    assert {"distillery.planning.workflow", "distillery.planning.config_check"} <= planner
    jobs = [
        name
        for name, path in modules().items()
        if is_job(path) and not is_planning(name) and name not in CONFIG_TOOLS
    ]
    assert len(jobs) > 20  # every python -m distillery.<stage>
    offenders = {job: sorted(reachable(graph, job) & planner) for job in jobs}
    assert {job: found for job, found in offenders.items() if found} == {}


def test_the_package_root_holds_jobs_and_shared_helpers_only():
    root = SOURCE / "distillery"
    helpers = {p.stem for p in root.glob("*.py") if p.stem != "__init__" and not is_job(p)}
    assert helpers == ROOT_HELPERS
