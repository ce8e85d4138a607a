"""The documentation: README.md, docs/*.md and benchmarks/README.md.

The README is the front page and the guides hold the rest, so a moved section or a renamed heading must not leave a
link pointing nowhere, and the framework guide must keep an entry for every hook an app can fill in. These tests
read Markdown only; the hook test imports the framework's ``Runner`` (torch) to learn which hooks exist.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FRAMEWORK_GUIDE = REPO / "docs" / "framework.md"
README_MAX_LINES = 200


def markdown_files() -> list[Path]:
    return [README, *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "benchmarks").glob("*.md"))]


FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1: a ``#`` or ``[x](y)`` inside a code block is code,
    not a heading or a link."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence) \
                    and not line.strip().lstrip(fence[0]):
                fence = None
        else:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: links reduced to their text, lowercase, every character but letters, digits,
    ``-``, ``_`` and spaces dropped (backticks included), then each space a ``-``."""
    text = INLINE_LINK.sub(lambda match: match.group(1), heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's slug in ``path``; a repeated heading gets ``-1``, ``-2``... as on GitHub."""
    seen: Counter[str] = Counter()
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        name = base if not seen[base] else f"{base}-{seen[base]}"
        seen[base] += 1
        found.add(name)
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """Every link and image target in ``path``'s prose, with its line; code spans are left out."""
    found = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            found.append((number, definition.group(1)))
            continue
        bare = CODE_SPAN.sub(lambda match: "x" * len(match.group(0)), line)
        found += [(number, match.group(2)) for match in INLINE_LINK.finditer(bare)]
    return found


def broken_links(path: Path) -> list[str]:
    """What is wrong with each relative link of ``path``: a file that does not exist, or an anchor that no heading
    of its target has."""
    problems = []
    for number, target in links(path):
        if not target or SCHEME.match(target):  # http:, https:, mailto:... are not this repository's
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        where = f"{path.relative_to(REPO)}:{number}: ({target})"
        if not linked.exists():
            problems.append(f"{where} {file_part} does not exist")
        elif anchor:
            if linked.suffix != ".md":
                problems.append(f"{where} an anchor into {linked.name}, which is not Markdown")
            elif unquote(anchor) not in anchors(linked):
                problems.append(f"{where} {linked.relative_to(REPO)} has no heading #{anchor}")
    return problems


def test_slugs_follow_githubs_rules() -> None:
    """The link check is only as good as its slugs: they must be the anchors GitHub makes, or a working link would
    fail (or a broken one pass)."""
    assert slug("`Runner` hooks") == "runner-hooks"
    assert slug("Recipes: default, fast and strong") == "recipes-default-fast-and-strong"
    assert slug("`--compile` on the CPU") == "--compile-on-the-cpu"
    assert slug("1 process against N") == "1-process-against-n"
    assert slug("`DataDescription` and the persisted state") == "datadescription-and-the-persisted-state"
    assert slug("Releases, `predict` and `serve`") == "releases-predict-and-serve"
    assert slug("train_step and [links](x.md)") == "train_step-and-links"


def test_duplicate_headings_get_numbered_anchors(tmp_path: Path) -> None:
    """GitHub numbers a repeated heading's anchor (-1, -2...), and a heading inside a code block is no heading."""
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n## Usage\n\n## Usage\n\n```\n## Not a heading\n```\n\n## Usage\n", encoding="utf-8")
    assert anchors(page) == {"notes", "usage", "usage-1", "usage-2"}


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(path: Path) -> None:
    """Sections move between the README and the guides: every relative link must still reach a file, and every
    ``#anchor`` a heading of its page, so that no reader lands nowhere."""
    assert path.exists(), f"{path.relative_to(REPO)} is missing"
    problems = broken_links(path)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_hook_has_its_entry_in_the_framework_guide() -> None:
    """An app's author learns the hooks from docs/framework.md (the hook errors point there): each hook of
    ``Runner`` and ``Data`` needs its own entry (a heading, a table row or a bullet that starts with its name in
    backticks) saying when it runs, what it receives and what it returns. The hooks come from the classes' own
    ``HOOKS``, so a new hook without an entry fails here."""
    from mnist_classifier.framework.data import Data
    from mnist_classifier.framework.runner import Runner

    entries = hook_entries(FRAMEWORK_GUIDE)
    for cls in (Runner, Data):
        hooks = getattr(cls, "HOOKS", None)
        assert isinstance(hooks, tuple) and hooks, (
            f"{cls.__module__}.{cls.__name__}.HOOKS is missing or empty: it must be the tuple of the names of the "
            f"hooks an app fills in, which this test checks against docs/framework.md (got {hooks!r})")
        not_attributes = [name for name in hooks if not hasattr(cls, name)]
        assert not not_attributes, f"{cls.__name__}.HOOKS names what {cls.__name__} does not have: {not_attributes}"
        missing = [name for name in hooks if name not in entries]
        assert not missing, (f"docs/framework.md has no entry (heading, table row or bullet starting with the name "
                             f"in backticks) for these {cls.__name__} hooks: {missing}")


def hook_entries(path: Path) -> set[str]:
    """The names that start an entry of ``path``: the first code span of a heading, of a table row's first cell or
    of a bullet, up to its ``(`` (```train_step(it_data, device)``` names ``train_step``)."""
    names = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if heading:
            start = heading.group(2)
        elif line.lstrip().startswith("|"):
            start = line.strip().strip("|").split("|")[0]
        elif re.match(r"^\s*(?:[-*+]|\d+\.)\s", line):
            start = re.sub(r"^\s*(?:[-*+]|\d+\.)\s+(?:\*\*)?", "", line)
        else:
            continue
        span = re.match(r"\s*`([^`]+)`", start)
        if span:
            names.add(span.group(1).split("(")[0].strip())
    return names


def test_readme_is_a_front_page() -> None:
    """The README is the front page (what it is, the commands, the lifecycle, the layout, links); everything else
    lives in docs/, so it stays short enough to read at once."""
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines, at most {README_MAX_LINES}: move the rest to docs/"


def documented_commands() -> dict[str, set[str]]:
    """Each pipeline named in a documented command line (``python -m mnist_classifier ... PIPELINE ...`` in a
    code block, or a row of the pipeline table in docs/experiments.md), with the ``--options`` written with it."""
    from mnist_classifier.__main__ import make_app

    pipelines = set(make_app().pipelines)
    option = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
    found: dict[str, set[str]] = {}
    for path in markdown_files():
        for line in path.read_text().splitlines():
            words = line.split()
            if "python -m mnist_classifier" in line and "benchmarks/" not in line:
                words = line[line.index("python -m mnist_classifier"):].split("#")[0].split()
                named = [word for word in words[3:] if word in pipelines]
                if named:
                    found.setdefault(named[0], set()).update(option.findall(" ".join(words)))
            elif path.name == "experiments.md" and len(words) > 2 and words[0] == "|" and \
                    words[1].strip("`") in pipelines:
                found.setdefault(words[1].strip("`"), set()).update(option.findall(line.split("|")[2]))
    return found


def test_every_documented_option_is_one_the_command_takes() -> None:
    """An option the docs show with a pipeline must be in that pipeline's ``--help``, so a renamed option cannot
    leave the guides describing one that no longer exists."""
    import subprocess
    import sys

    commands = documented_commands()
    assert {"init", "train", "export", "sweep", "predict", "serve"} <= set(commands)
    for pipeline, options in sorted(commands.items()):
        help_text = subprocess.run([sys.executable, "-m", "mnist_classifier", pipeline, "--help"], cwd=REPO,
                                   capture_output=True, text=True, check=True).stdout
        unknown = sorted(option for option in options if not re.search(rf"(?<![\w-]){option}(?![\w-])", help_text))
        assert not unknown, f"the docs show {pipeline} with {unknown}, which its --help does not list"
