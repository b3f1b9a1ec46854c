"""Tests that keep the docs honest: README is a page, links resolve, and the manual matches the CLI.

README.md is the front page; the manual is docs/*.md.  These tests read the Markdown as text and
walk the typer/click command tree of ``cli.app``; they never execute a documented example.
"""

import re
import shlex
from pathlib import Path

import pytest
import typer.main
from conftest import REPO

from edirecon.cli import app

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
COMMANDS_MD = DOCS / "commands.md"

README_LIMIT = 15 * 1024

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def _prose(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    """Every anchor GitHub makes for the headings of a Markdown file (repeats get -1, -2, ...)."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(page.read_text(encoding="utf-8")):
        m = re.match(r"^#{1,6} (.+?)\s*#*\s*$", line)
        if not m:
            continue
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _links(page: Path) -> list[str]:
    """The link targets of a Markdown file's prose (inline code spans removed first)."""
    targets = []
    for line in _prose(page.read_text(encoding="utf-8")):
        line = re.sub(r"`[^`]*`", "", line)
        targets.extend(LINK.findall(line))
    return targets


def _leaves(command, path=()):
    """(path, click command) for every command of the tree that runs something."""
    subs = getattr(command, "commands", None)
    if subs is None:
        yield path, command
        return
    for name, sub in sorted(subs.items()):
        yield from _leaves(sub, (*path, name))


def _options(command) -> dict[str, bool]:
    """Every option name of a click command -> whether it is a flag (takes no value)."""
    names = {"--help": True}
    for param in command.params:
        if param.param_type_name != "option":
            continue
        for opt in (*param.opts, *param.secondary_opts):
            names[opt] = bool(param.is_flag or param.count)
    return names


ROOT = typer.main.get_command(app)
LEAVES = dict(_leaves(ROOT))


def _shell_examples() -> list[tuple[str, str]]:
    """(page, line) for every line of a ```sh block that runs `edirecon` (continuations joined)."""
    examples = []
    for page in PAGES:
        fenced, lang, pending = False, "", ""
        for line in page.read_text(encoding="utf-8").splitlines():
            if FENCE.match(line):
                fenced, lang = not fenced, line.strip("`~ ").lower()
                continue
            if not fenced or lang not in ("sh", "bash", "shell", "console"):
                continue
            line = pending + line
            if line.rstrip().endswith("\\"):
                pending = line.rstrip()[:-1] + " "
                continue
            pending = ""
            words = line.strip().removeprefix("$ ").split()
            while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
                words.pop(0)  # VAR=value edirecon ...
            if words and words[0] == "edirecon":
                examples.append((page.relative_to(REPO).as_posix(), line.strip()))
    return examples


def _check_example(line: str) -> list[str]:
    """What is wrong with one documented `edirecon ...` line, checked against the command tree."""
    lexer = shlex.shlex(line.removeprefix("$ "), posix=True, punctuation_chars="|&;")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words = []
    for word in lexer:
        if word in ("|", "&", ";", "&&", "||"):
            break  # the rest is another command of the shell
        words.append(word)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        words.pop(0)
    assert words[0] == "edirecon"
    # synopsis notation: [--opt VALUE]... and FILE... are read as the words they stand for
    words = [w.strip("[]").removesuffix("...").rstrip("]") for w in words[1:]]
    words = [w for w in words if w]
    command, path = ROOT, []
    while getattr(command, "commands", None) is not None:
        if not words or words[0].startswith("-"):
            if words and words[0] in ("--help", "--version"):
                return []
            return [f"`edirecon {' '.join(path)}` needs a subcommand"]
        name = words.pop(0)
        if name not in command.commands:
            return [f"`edirecon {' '.join([*path, name])}` is not a command"]
        command, path = command.commands[name], [*path, name]
    options, problems = _options(command), []
    while words:
        word = words.pop(0)
        if not word.startswith("--"):
            continue  # an argument, or an option's value
        name = word.split("=", 1)[0]
        if name not in options:
            problems.append(f"`edirecon {' '.join(path)}` has no option {name}")
        elif not options[name] and "=" not in word and words:
            words.pop(0)  # the option's value
    return problems


# ------------------------------------------------------------------------------ README is a page
def test_readme_is_one_page():
    """README.md is at most 15 KB: the front page, the manual lives in docs/."""
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move manual text to docs/"


def test_readme_quick_start_commands():
    """README's quick start shows exactly the two commands `make demo` and `make test`."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## Quick start")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S).group(1)
    assert [line.split()[:2] for line in block.splitlines() if line.strip()] == [
        ["make", "demo"],
        ["make", "test"],
    ]


def test_readme_links_every_manual_page():
    """README links every page of docs/ and the CHANGELOG, so the manual can be found."""
    targets = {t.split("#")[0] for t in _links(README)}
    pages = {f"docs/{p.name}" for p in DOCS.glob("*.md")} | {"CHANGELOG.md"}
    assert pages - targets == set()


# ------------------------------------------------------------------------------ links resolve
def _broken_links(page: Path) -> list[str]:
    """The relative links of a Markdown file whose file, or heading, does not exist."""
    broken = []
    for target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {path or page.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page):
    """Every relative link of README.md and docs/*.md names an existing file, and heading if any."""
    assert _broken_links(page) == [], f"{page.name}: broken links"


def test_link_checker_finds_broken_links(tmp_path):
    """The link check reports a missing file and a missing heading, and accepts good links."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "outputs.md").write_text("# Outputs (format version 1)\n\n## `edirecon run INPUT... [--db URL]`\n")
    page = tmp_path / "README.md"
    page.write_text(
        "See [outputs](docs/outputs.md#outputs-format-version-1), [run](docs/outputs.md#edirecon-run-input---db-url),\n"
        "[gone](docs/rules.md), [old anchor](docs/outputs.md#outputs), [here](#see) and [web](https://x12.org/).\n"
        "`[not a link](nowhere.md)` is code.\n\n# See\n"
    )
    assert _broken_links(page) == [
        "docs/rules.md: no file docs/rules.md",
        "docs/outputs.md#outputs: no heading #outputs in docs/outputs.md",
    ]


# ------------------------------------------------------------------------------ commands and options
def test_every_command_in_readme_table_and_commands_doc():
    """Every top-level command is a row `edirecon <command>` of README's table and in docs/commands.md."""
    readme_rows = [line for line in _prose(README.read_text(encoding="utf-8")) if line.startswith("| `edirecon ")]
    manual = COMMANDS_MD.read_text(encoding="utf-8")
    for name in ROOT.commands:
        assert any(row.startswith(f"| `edirecon {name}") for row in readme_rows), f"{name} not in README's table"
        assert f"`edirecon {name}" in manual, f"{name} not in docs/commands.md"


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_every_option_documented(path):
    """Every option of every command appears in its row of docs/commands.md's table of options."""
    rows = [line for line in COMMANDS_MD.read_text(encoding="utf-8").splitlines() if re.match(rf"^\| `edirecon {re.escape(' '.join(path))}( |`)", line)]
    assert len(rows) == 1, f"docs/commands.md has {len(rows)} option rows for edirecon {' '.join(path)}"
    missing = [opt for opt in _options(LEAVES[path]) if opt != "--help" and not re.search(rf"`{re.escape(opt)}(`| |=)", rows[0])]
    assert missing == [], f"edirecon {' '.join(path)}: options not in docs/commands.md: {missing}"


def test_shell_examples_found():
    """The docs hold shell examples of edirecon (so the check below is not vacuous)."""
    pages = {page for page, _ in _shell_examples()}
    assert {"docs/commands.md", "docs/scale-out.md", "docs/workflow-and-reports.md"} <= pages


@pytest.mark.parametrize("page,line", _shell_examples())
def test_shell_example_uses_real_command_and_options(page, line):
    """A documented `edirecon ...` line names a real (sub)command and only options it has."""
    assert _check_example(line) == [], f"{page}: {line}"


@pytest.mark.parametrize(
    "line,problem",
    [
        ("edirecon refund aprove RF-1", "`edirecon refund aprove` is not a command"),
        ("edirecon run in/ --workers 2 --fast", "`edirecon run` has no option --fast"),
        ("edirecon refund", "`edirecon refund` needs a subcommand"),
        ("edirecon status --json --db x &  # and --bogus in a comment", None),
        ("edirecon refund list [--status S]... [--payer ID]", None),
        ("edirecon report --as-of=2026-11-27 --quarter 2026Q4", None),
    ],
)
def test_shell_example_checker(line, problem):
    """The example checker catches a misspelt subcommand or option, and reads synopsis notation."""
    assert _check_example(line) == ([problem] if problem else [])
