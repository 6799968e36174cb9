"""What the docs (README.md, docs/*.md, ...) say the connector prints is what it prints.

Three conventions (DEVELOPMENT.md, "The docs tests", describes them for writers):

- A fenced ```console block is a terminal session: each line starting with `$ ` is a command
  (a line ending in `\\` continues on the next), the lines after it are its output, stdout
  and stderr together. `...` alone on a line stands for any number of lines, `...` within a
  line for any text. Every block of a page runs in order, in one scratch folder that looks
  like a checkout after the quick start (`.venv`, `integration_tests/`); `make TARGET` runs
  the target's recipe from the Makefile, so `make sandbox-start` serves the sandbox there.
- In a page's "Errors you may see" table, the first column quotes a message: it must be the
  beginning of one the connector can print, with example values (or `…`) where the message
  has a value (checked against the message texts in source_customers/ and manifests/).
- The retry and backoff figures are stated once, in docs/guarantees.md, and that sentence
  is computed here from the manifests and the CDK's formula.

And every relative link of a page leads to a file of the repository (and, with a `#`, to a
heading of it): the docs refer to nothing outside it.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import (
    InterpolatedString,
)
from airbyte_cdk.sources.declarative.requesters.error_handlers.backoff_strategies.exponential_backoff_strategy import (  # noqa: E501
    ExponentialBackoffStrategy,
)
from airbyte_cdk.sources.declarative.requesters.error_handlers.default_error_handler import (
    DefaultErrorHandler,
)
from airbyte_cdk.sources.streams.http import rate_limiting

ROOT = Path(__file__).resolve().parents[1]
# Every page of docs the repository keeps: each is held to every check below.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "DEVELOPMENT.md",
         ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md"]
# The vendors' read manifests (each has a page); `<vendor>.writes.yaml` declares writes,
# `<vendor>.lookups.yaml` the MCP server's lookups.
MANIFESTS = sorted(p for p in (ROOT / "manifests").glob("*.yaml") if p.name.count(".") == 1)
# The writes manifests name the causes a rejected record is logged with (`codes`).
WRITES_MANIFESTS = sorted((ROOT / "manifests").glob("*.writes.yaml"))
LOOKUPS_MANIFESTS = sorted((ROOT / "manifests").glob("*.lookups.yaml"))
# Each vendor's page: the one home of its config, streams, assumptions and errors.
VENDOR_PAGES = [ROOT / "docs" / f"{manifest.stem}.md" for manifest in MANIFESTS]
# The guarantees' page: the one statement of the retry and backoff figures.
GUARANTEES = ROOT / "docs" / "guarantees.md"
# The package's code, in every subpackage (the manifests' components, the runtime, ...).
SOURCES = sorted((ROOT / "source_customers").rglob("*.py"))


def name(page: Path) -> str:
    """The page as the repository names it (two pages are called README.md)."""
    return page.relative_to(ROOT).as_posix()


def test_every_page_exists() -> None:
    missing = [name(page) for page in [*PAGES, *VENDOR_PAGES] if not page.is_file()]
    assert not missing, f"pages missing: {missing}"


# --- console blocks ----------------------------------------------------------------------

@dataclass
class Command:
    page: str
    line: int  # of the `$ ` line in the page
    command: str
    expected: list[str]


def console_commands(page: Path) -> list[Command]:
    commands: list[Command] = []
    inside = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if not inside:
            inside = line.strip() == "```console"
            continue
        if line.strip() == "```":
            inside = False
        elif line.startswith("$ "):
            commands.append(Command(name(page), number, line[2:], []))
        elif commands and commands[-1].command.endswith("\\") and not commands[-1].expected:
            commands[-1].command = commands[-1].command[:-1] + " " + line.strip()
        else:
            assert commands, f"{name(page)}:{number}: output before any `$ ` command"
            commands[-1].expected.append(line)
    return commands


def matches(expected: list[str], got: list[str]) -> bool:
    """`got` fits `expected`: `...` alone is any lines, `...` within a line any text."""
    lines = [re.compile(".*".join(re.escape(p) for p in line.rstrip().split("..."))) for line in
             expected]
    gap = [line.strip() == "..." for line in expected]

    @cache
    def fits(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(got)
        if gap[i]:
            return fits(i + 1, j) or (j < len(got) and fits(i, j + 1))
        return j < len(got) and bool(lines[i].fullmatch(got[j].rstrip())) and fits(i + 1, j + 1)

    return fits(0, 0)


def makefile_recipe(target: str) -> str:
    """The recipe of a Makefile target, as the shell runs it (`$(BIN)` and `@` resolved)."""
    text = (ROOT / "Makefile").read_text()
    found = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.M)
    assert found, f"the Makefile has no target {target!r}"
    steps = [line.strip().lstrip("@") for line in found.group(1).splitlines()]
    return " && ".join(s.replace("$(BIN)", ".venv/bin").replace("$(VENV)", ".venv")
                       for s in steps)


def workspace(folder: Path) -> dict[str, str]:
    """`folder` made to look like a checkout after the quick start; the commands' env."""
    (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (folder / "integration_tests").symlink_to(ROOT / "integration_tests",
                                              target_is_directory=True)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def run_command(command: str, folder: Path, env: dict[str, str]) -> list[str]:
    words = shlex.split(command)
    if words[:1] == ["make"]:
        assert len(words) == 2, f"one make target at a time: {command}"
        command = makefile_recipe(words[1])
    done = subprocess.run(["bash", "-c", command], cwd=folder, env=env, timeout=300,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.stdout.splitlines()


def pages_with_sessions() -> list[Path]:
    return [page for page in PAGES if page.is_file() and console_commands(page)]


@pytest.mark.parametrize("page", pages_with_sessions(), ids=name)
def test_console_sessions_print_what_they_show(page: Path, tmp_path: Path) -> None:
    assert Path(sys.prefix, "bin", "source-customers").exists(), "run from the virtualenv"
    env = workspace(tmp_path)
    failures = []
    try:
        for command in console_commands(page):
            got = run_command(command.command, tmp_path, env)
            if not matches(command.expected, got):
                failures.append(
                    f"{command.page}:{command.line}: $ {command.command}\n"
                    "--- the page shows:\n" + "\n".join(command.expected) +
                    "\n--- it printed:\n" + "\n".join(line[:300] for line in got[:60]))
    finally:
        subprocess.run([sys.executable, "-m", "scripts.sandbox", "--stop"], cwd=tmp_path,
                       env=env, capture_output=True, timeout=60)
    assert not failures, "\n\n".join(failures)


def test_readme_runs_every_command_of_the_cli() -> None:
    """Running it shows each command, the sandbox's start and stop, against the sandbox."""
    shown = " ".join(c.command for c in console_commands(ROOT / "README.md"))
    for needed in ("make sandbox-start", "make sandbox-stop", "source-customers spec",
                   "source-customers check", "source-customers discover",
                   "source-customers read", "--state", "source-customers --help"):
        assert needed in shown, needed


def test_matching_rules() -> None:
    assert matches(["a", "...", "c ... e"], ["a", "x", "y", "c d e"])
    assert matches(["a", "...", "c"], ["a", "c"])
    assert not matches(["a", "c"], ["a", "b", "c"])
    assert not matches(["a ... e"], ["a d f"])


# --- messages quoted in "Errors you may see" --------------------------------------------

VALUE = "\x00"  # where a message template has a value


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for item in node.values():
            yield from _strings(item)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        text = re.sub(r"\s*\{%-.*?%\}|\{%.*?-%\}\s*|\{%.*?%\}", "", " ".join(node.split()))
        yield re.sub(r"\{\{.*?\}\}", VALUE, text)


@cache
def message_templates() -> tuple[str, ...]:
    """Every string of the manifests and of the package's code, values marked VALUE."""
    found: set[str] = set()
    for manifest in [*MANIFESTS, *WRITES_MANIFESTS, *LOOKUPS_MANIFESTS]:
        found.update(_strings(yaml.safe_load(manifest.read_text())))
    for source in SOURCES:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.JoinedStr):
                found.add("".join(str(v.value) if isinstance(v, ast.Constant) else VALUE
                                  for v in node.values))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return tuple(t for t in found if len(t) > 12)


def quoted_errors(page: Path) -> Iterator[tuple[int, str]]:
    """(line, message) of each row of the page's "Errors you may see" table."""
    section = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("## "):
            section = line.strip() == "## Errors you may see"
        elif section and line.startswith("| `"):
            yield number, line.split("`")[1]


def fill(template: str, text: str) -> tuple[int, list[str]] | None:
    """If `text` is the beginning of the template with its values filled in (each value up to
    the template's next words): the characters that are the template's words, and the
    values; else None."""
    first, *rest = template.split(VALUE)
    if not text.startswith(first):
        return (len(text), []) if first.startswith(text) else None
    position = words = len(first)
    values: list[str] = []
    for literal in rest:  # each preceded by a value
        found = text.find(literal, position) if literal else position
        if found < 0:  # the text ends in this value, or part of the way into `literal`
            ends = [j for j in range(position, len(text)) if literal.startswith(text[j:])]
            end = ends[0] if ends else len(text)
            return words + len(text) - end, [*values, text[position:end]]
        values.append(text[position:found])
        position = found + len(literal)
        words += len(literal)
    if position == len(text) or template.endswith(VALUE):
        return words, values
    return None


@cache
def known_words() -> tuple[str, ...]:
    """The words of every template, longest first: a value may be another message's."""
    parts = {p.strip() for t in message_templates() for p in t.split(VALUE)}
    return tuple(sorted((p for p in parts if len(p) >= 8), key=len, reverse=True))


def printable(message: str) -> bool:
    """The message is the beginning of a template's, with values (or `…`) filled in, and
    mostly words of the connector's messages (a value may be another message's words)."""
    text = message.replace("...", "…").removesuffix("…").rstrip()
    for template in message_templates():
        filled = fill(template, text)
        if filled is None:
            continue
        words, values = filled
        words += sum(next((len(w) for w in known_words() if w in v), 0) for v in values)
        if words >= max(10, len(text) / 2):
            return True
    return False


ERROR_TABLES = [(page, number, message) for page in PAGES if page.is_file()
                for number, message in quoted_errors(page)]


@pytest.mark.parametrize(("page", "number", "message"), ERROR_TABLES,
                         ids=[f"{name(p)}:{n}" for p, n, _ in ERROR_TABLES])
def test_quoted_error_is_one_the_connector_prints(page: Path, number: int,
                                                  message: str) -> None:
    assert printable(message), (
        f"{name(page)}:{number}: no message of source_customers/ or manifests/ reads "
        f"`{message}`: quote the beginning of a message the connector prints, in its own "
        "words (example values or `…` for its values)")


def test_every_vendor_page_quotes_its_errors() -> None:
    for page in VENDOR_PAGES:
        assert list(quoted_errors(page)), f"{name(page)} has no 'Errors you may see' table"


# --- retries and backoff, stated once ----------------------------------------------------

def _error_handlers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "backoff_strategies" in node:
            yield node
        for item in node.values():
            yield from _error_handlers(item)
    elif isinstance(node, list):
        for item in node:
            yield from _error_handlers(item)


def retry_policy(vendor: str, config: dict[str, Any] | None = None
                 ) -> tuple[int, list[int], int]:
    """(most tries, the waits between them without Retry-After, seconds until the last), for
    a sync, or for the command whose config is `config` (a check's overrides)."""
    manifest = yaml.safe_load((ROOT / "manifests" / f"{vendor}.yaml").read_text())
    handlers = list(_error_handlers(manifest))
    assert len(handlers) == 1, f"{vendor}: one error handler expected, {len(handlers)} found"
    (handler,) = handlers
    (exponential,) = [s for s in handler["backoff_strategies"]
                      if s["type"] == "ExponentialBackoffStrategy"]
    strategy = ExponentialBackoffStrategy(parameters={}, config={},
                                          factor=exponential.get("factor", 5))
    retries = InterpolatedString.create(str(handler.get("max_retries", 5)), parameters={})
    tries = int(retries.eval(config or {})) + 1
    max_time = int(handler.get("max_time", DefaultErrorHandler.max_time))
    # The CDK waits the strategy's time plus a second, and gives up after `tries` attempts
    # or once `max_time` has passed since the first (a wait already begun is finished).
    assert "retry_after + 1" in inspect.getsource(rate_limiting.user_defined_backoff_handler)
    waits: list[int] = []
    attempt, elapsed = 1, 0
    while attempt < tries and elapsed < max_time:
        wait = strategy.backoff_time(None, attempt)
        assert wait is not None
        waits.append(int(wait) + 1)
        elapsed += waits[-1]
        attempt += 1
    return tries, waits, elapsed


def _listed(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}"


def backoff_statement() -> str:
    """The one statement of the retry figures (docs/guarantees.md), from the manifests."""
    policies = {vendor: retry_policy(vendor) for vendor in ("loke", "malomo", "okendo",
                                                            "capillary")}
    loke, capillary, okendo = policies["loke"], policies["capillary"], policies["okendo"]
    assert policies["malomo"] == loke, "LOKE and Malomo are stated together"
    assert capillary[0] == loke[0], "one number of tries is stated for all but Okendo"
    assert okendo[1][:len(loke[1])] == loke[1], "Okendo's waits are stated as LOKE's, continued"
    checks = {vendor: retry_policy(vendor, {"connection_check": True}) for vendor in policies}
    check, capillary_check = checks["loke"], checks["capillary"]
    assert checks["malomo"] == checks["okendo"] == check, "LOKE, Malomo and Okendo's checks"
    assert capillary_check[0] == check[0], "one number of tries is stated for every check"
    minutes = int(DefaultErrorHandler.max_time) // 60
    okendo_more = okendo[1][len(loke[1]):]
    return (
        f"A request is tried up to {loke[0]} times (Okendo {okendo[0]}), and no retry starts "
        f"once {minutes} minutes have passed since the first try. Without a `Retry-After` the "
        f"waits in between are {_listed(loke[1])} s (Capillary {_listed(capillary[1])} s; "
        f"Okendo's go on with {_listed(okendo_more)} s, so it tries {len(okendo[1]) + 1} times), "
        f"then the sync fails with the last error: an API that is down fails a sync after "
        f"about {round(loke[2] / 60)} minutes (Capillary {round(capillary[2] / 60)}, Okendo "
        f"{round(okendo[2] / 60)}), not at once. A `check` tries {check[0]} times, about "
        f"{check[2]} s (Capillary {capillary_check[2]} s), since someone is waiting on it, and "
        "does not retry a host it cannot reach at all."
    )


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_backoff_is_stated_as_the_manifests_configure_it() -> None:
    guarantees = _flat(GUARANTEES.read_text(encoding="utf-8"))
    statement = backoff_statement()
    assert guarantees.count(statement) == 1, (
        f"{name(GUARANTEES)} must state the retries once, exactly so:\n{statement}")


# Ways of stating a retry count or a backoff wait; only the guarantees' statement may.
FIGURES = re.compile(r"retried up to \d+|up to \d+ (?:times|retries)|after \d+ (?:retries|tries)|"
                     r"\b\d+ s, \d+ s(?:, \d+ s|, \.\.\.|, …)|"
                     r"exponential(?:ly)?,? (?:from|\(?\d)|waiting \d+ s", re.I)


def test_backoff_is_stated_nowhere_else() -> None:
    statement = backoff_statement()
    for page in PAGES:
        text = _flat(page.read_text(encoding="utf-8")).replace(statement, "")
        found = [m.group(0) for m in FIGURES.finditer(text)]
        assert not found, (f"{name(page)} states retry figures ({found}): link to "
                           "[Guarantees](docs/guarantees.md#retries) instead")


# --- links stay in the repository ---------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The `#...` each heading of a page gets, as GitHub makes them."""
    found: set[str] = set()
    inside = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside and line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


def links(page: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of each link of the page outside code blocks."""
    inside = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            inside = not inside
        elif not inside:
            for found in LINK.finditer(line):
                yield number, found.group(1)


def broken(page: Path, target: str) -> str | None:
    """Why a link of `page` leads nowhere in the repository, or None."""
    if re.match(r"[a-z]+:", target):  # https:, mailto:: outside by design
        return None
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    if not file.is_relative_to(ROOT):
        return "leads outside the repository"
    if not file.exists():
        return "leads to no file"
    if anchor and file.suffix == ".md" and anchor not in anchors(file):
        return f"leads to no heading #{anchor} of {name(file)}"
    return None


def test_links_lead_to_the_repository() -> None:
    found = [f"{name(page)}:{number}: ({target}) {why}" for page in PAGES
             for number, target in links(page) if (why := broken(page, target))]
    assert not found, "\n".join(found)


def test_link_rules() -> None:
    page = ROOT / "docs" / "loke.md"
    assert broken(page, "guarantees.md#retries") is None
    assert broken(page, "../README.md") is None
    assert broken(page, "https://example.com/x") is None
    assert broken(page, "guarantees.md#no-such-heading")
    assert broken(page, "../../elsewhere/notes.md")
    assert broken(page, "missing.md")
