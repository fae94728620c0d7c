"""guardflow's report of a pytest run, for the test-first guards.

guardflow writes this file beside the tests as guardflow_report.py and
loads it with `-p guardflow_report`. At the end of the session it writes
$GUARDFLOW_REPORT (JSON): the collection errors, and for each test its
outcome, the exception that ended it (its type, whether it is an
assertion, the file it was raised in) and whether the test checks
anything at all (an `assert` on a value that is not a constant,
`pytest.raises`/`warns`, an `assert…` method, a `fail` under a
condition), found in the test's source and the helpers it calls.
"""

import ast
import json
import os

import pytest

_REPORT = os.environ.get("GUARDFLOW_REPORT", "guardflow-report.json")
_MAX_TEXT = 1500
_MAX_TESTS = 500

_collect_errors = []
_tests = {}
_order = []
_excs = {}
_checks = {}
_modules = {}


def _short(text):
    text = str(text)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def _constant(expr):
    try:
        ast.literal_eval(expr)
        return True
    except Exception:
        return False


def _call_name(func):
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


_BRANCHES = tuple(
    getattr(ast, n)
    for n in ("If", "IfExp", "Try", "TryStar", "While", "For", "AsyncFor", "Match")
    if hasattr(ast, n)
)


def _has_check(fn, helpers, methods):
    seen = {id(fn)}
    stack = [(fn, False)]
    while stack:
        node, conditional = stack.pop()
        if isinstance(node, ast.Assert) and not _constant(node.test):
            return True
        if isinstance(node, ast.Call):
            name = _call_name(node.func)
            if name.startswith("assert") or name in ("raises", "warns", "deprecated_call"):
                return True
            if conditional and name == "fail":
                return True
            target = None
            if isinstance(node.func, ast.Name):
                target = helpers.get(node.func.id)
            elif (
                isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("self", "cls")
            ):
                target = methods.get(node.func.attr)
            if target is not None and id(target) not in seen:
                seen.add(id(target))
                stack.append((target, False))
        branch = conditional or isinstance(node, _BRANCHES)
        for child in ast.iter_child_nodes(node):
            stack.append((child, branch))
    return False


def _module(path):
    key = str(path)
    if key not in _modules:
        funcs, classes = {}, {}
        try:
            with open(key, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except Exception:
            tree = None
        if tree is not None:
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    funcs[node.name] = node
                elif isinstance(node, ast.ClassDef):
                    classes[node.name] = {
                        m.name: m
                        for m in node.body
                        if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
                    }
        _modules[key] = (funcs, classes)
    return _modules[key]


def _item_checks(item):
    try:
        funcs, classes = _module(item.path)
        cls = getattr(item, "cls", None)
        name = getattr(item, "originalname", None) or item.name
        methods = classes.get(cls.__name__, {}) if cls is not None else {}
        fn = methods.get(name) if cls is not None else funcs.get(name)
        if fn is None:
            # not found in the source: not judged
            return True
        return _has_check(fn, funcs, methods)
    except Exception:
        return True


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        _checks[item.nodeid] = _item_checks(item)


def pytest_collectreport(report):
    if report.failed:
        text = str(report.longrepr)
        lines = [l[4:] if l.startswith("E   ") else l[1:].strip() for l in text.splitlines() if l.startswith("E ")]
        if not lines:
            lines = text.splitlines()[-12:]
        _collect_errors.append({"nodeid": report.nodeid, "message": _short("\n".join(lines[-12:]))})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # around every other implementation: unittest's sets `call.excinfo`
    yield
    if call.excinfo is not None and (item.nodeid, call.when) not in _excs:
        kind = call.excinfo.type
        where = ""
        try:
            where = os.path.basename(str(call.excinfo.traceback[-1].path))
        except Exception:
            pass
        # pytest.raises' DID NOT RAISE and pytest.fail are checks that failed
        assertion = issubclass(kind, (AssertionError, pytest.fail.Exception))
        _excs[(item.nodeid, call.when)] = {
            "exception": kind.__name__,
            "assertion": bool(assertion),
            "raised_in": where,
            "value": _short(call.excinfo.value),
        }


def pytest_runtest_logreport(report):
    entry = _tests.get(report.nodeid)
    if entry is None:
        entry = {
            "nodeid": report.nodeid,
            "outcome": "passed",
            "when": "call",
            "exception": "",
            "assertion": False,
            "raised_in": "",
            "message": "",
        }
        _tests[report.nodeid] = entry
        _order.append(report.nodeid)
    if entry["outcome"] == "failed":
        return
    if report.failed:
        exc = _excs.get((report.nodeid, report.when), {})
        crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
        message = getattr(crash, "message", None) or exc.get("value") or str(report.longrepr)
        entry.update(
            outcome="failed",
            when=report.when,
            exception=exc.get("exception", "XPASS(strict)" if hasattr(report, "wasxfail") else ""),
            assertion=exc.get("assertion", False),
            raised_in=exc.get("raised_in", ""),
            message=_short(message),
        )
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        entry.update(
            outcome="xfailed" if hasattr(report, "wasxfail") else "skipped",
            when=report.when,
            message=_short(getattr(report, "wasxfail", "") or reason),
        )
    elif report.when == "call" and hasattr(report, "wasxfail"):
        entry.update(outcome="xpassed", when="call")


def _code_names():
    try:
        with open("solution.py", encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except Exception:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names.extend(t.id for t in node.targets if isinstance(t, ast.Name))
    return [n for n in names if not n.startswith("_")]


def pytest_sessionfinish(session, exitstatus):
    tests = [dict(_tests[n], checks=_checks.get(n, True)) for n in _order]
    data = {
        "exitstatus": int(exitstatus),
        "collect_errors": _collect_errors[:50],
        "tests": tests[:_MAX_TESTS],
        "more": max(0, len(tests) - _MAX_TESTS),
        "code_names": _code_names()[:100],
    }
    with open(_REPORT, "w", encoding="utf-8") as f:
        json.dump(data, f)
