"""docs/contract.md is what every section citation in the repository points at.

A citation is the section sign followed by a section number, optionally a range ("-" to a second
number, with or without its own sign) and optionally "step(s) N[a]" / "item(s) N" naming a
numbered list entry of that section. Every cited number must be a heading of docs/contract.md,
and no file may point at the contract's old location outside the repository.

The section sign is written as an escape in this file so the file can hold examples of citations
without citing anything itself.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "contract.md"
FIDELITY = ROOT / "docs" / "fidelity.md"
THIS = Path(__file__).resolve()

SIGN = "\u00a7"
NUM = r"\d+(?:\.\d+)*"
HEADING = re.compile(rf"^#{{2,6}} ({NUM})\.? ")
CITATION = re.compile(
    rf"{SIGN}\s?(?P<first>{NUM})"
    rf"(?:\s?[-\u2013]\s?{SIGN}?\s?(?P<last>{NUM}))?"
    rf"(?:\s+(?P<kind>steps?|items?)\s+(?P<a>\d+)(?P<a_sub>[a-z])?"
    rf"(?:\s?[-\u2013]\s?(?P<b>\d+)(?P<b_sub>[a-z])?)?\b)?"
)
LIST_ITEM = re.compile(r"^ {0,3}(\d+)\.\s")
SUB_ITEM = re.compile(r"^\s+(?:[-*]\s+)?([a-z])\.\s")
# Pointers to the contract's former home outside the repository (split so this file has none).
OUTSIDE = ("shared" + "/spec", "../" + "shared/")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
SKIP_DIRS = {
    ".git",
    ".venv",
    ".tox",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".benchmarks",
    "__pycache__",
    "build",
    "dist",
}

# The shape of the numbering; renumbering would silently re-point existing citations.
SUBSECTIONS = {1: 5, 2: 17, 3: 6, 4: 7, 5: 0, 6: 3, 7: 3, 8: 9, 9: 0, 10: 0, 11: 0}


def contract_sections() -> dict[str, list[str]]:
    """Section number -> the lines of its body (up to the next heading of any level)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in CONTRACT.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            match = HEADING.match(line)
            if match:
                assert match.group(1) not in sections, f"duplicate section {match.group(1)}"
                current = sections[match.group(1)] = []
            else:
                current = None
            continue
        if current is not None:
            current.append(line)
    return sections


def list_entries(body: list[str]) -> set[str]:
    """Numbered entries of a section body: "3" for a top-level "3." and "3c" for its "c."."""
    entries: set[str] = set()
    top: str | None = None
    for line in body:
        if match := LIST_ITEM.match(line):
            top = match.group(1)
            entries.add(top)
        elif top is not None and (match := SUB_ITEM.match(line)):
            entries.add(top + match.group(1))
    return entries


def repo_files() -> list[Path]:
    """Tracked files plus new ones not ignored; a plain walk if git is not available."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        paths = [ROOT / name for name in out.decode("utf-8").split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        paths = [
            path
            for path in ROOT.rglob("*")
            if not SKIP_DIRS.intersection(path.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in path.parts)
        ]
    return sorted({path for path in paths if path.is_file()})


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    data = path.read_bytes()
    if b"\0" in data:
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    yield from enumerate(text.splitlines(), start=1)


def citation_problems(text: str, sections: dict[str, list[str]]) -> list[str]:
    """What in `text` names no section (or no step/item of its section)."""
    problems = []
    for match in CITATION.finditer(text):
        numbers = [n for n in (match.group("first"), match.group("last")) if n]
        missing = [n for n in numbers if n not in sections]
        if missing:
            problems.append(f"{match.group(0)!r}: no section {', '.join(missing)}")
            continue
        if match.group("kind") and not match.group("last"):
            entries = list_entries(sections[match.group("first")])
            wanted = [match.group("a") + (match.group("a_sub") or "")]
            if match.group("b"):
                wanted.append(match.group("b") + (match.group("b_sub") or ""))
            absent = [w for w in wanted if w not in entries]
            if absent:
                problems.append(
                    f"{match.group(0)!r}: section {match.group('first')} has no numbered "
                    f"step/item {', '.join(absent)}"
                )
    return problems


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_headings_keep_the_numbering() -> None:
    sections = contract_sections()
    expected = set()
    for top, count in SUBSECTIONS.items():
        expected.add(str(top))
        expected.update(f"{top}.{sub}" for sub in range(1, count + 1))
    assert set(sections) == expected


def test_citation_parsing() -> None:
    sections = contract_sections()
    good = [
        f"contract {SIGN}3.5",
        f"{SIGN}3.5 step 4b",
        f"{SIGN}2.3-{SIGN}2.6",
        f"{SIGN}2.8-2.13",
        f"{SIGN}1-{SIGN}7",
        f"{SIGN}4.6 steps 2-4",
        f"{SIGN}8.9 item 18",
        f"{SIGN}5 step 3",
        f"{SIGN}8.2 step 1 (on",
        f"({SIGN}2.4).",
        f"{SIGN}2 #1",
        f"{SIGN} 10",
    ]
    for text in good:
        assert citation_problems(text, sections) == [], text
    bad = [
        f"{SIGN}12",
        f"{SIGN}3.7",
        f"{SIGN}8.9.4",
        f"{SIGN}2.8-2.18",
        f"{SIGN}0-{SIGN}3",
        f"{SIGN}3.5 step 6",
        f"{SIGN}3.5 step 2c",
        f"{SIGN}8.9 item 19",
        f"{SIGN}4.6 steps 2-7",
    ]
    for text in bad:
        assert len(citation_problems(text, sections)) == 1, text


def test_every_citation_names_a_section() -> None:
    sections = contract_sections()
    failures = [
        f"{rel(path)}:{number}: {problem}"
        for path in repo_files()
        for number, line in text_lines(path)
        for problem in citation_problems(line, sections)
    ]
    assert not failures, "citations naming no section of docs/contract.md:\n" + "\n".join(failures)


def test_fidelity_table_rows_name_sections() -> None:
    sections = contract_sections()
    failures = []
    for number, line in enumerate(FIDELITY.read_text(encoding="utf-8").splitlines(), start=1):
        cells = line.split("|")
        if len(cells) < 3 or not re.match(r"\s*\d", cells[1]):
            continue
        failures.extend(
            f"docs/fidelity.md:{number}: {cited!r}"
            for cited in re.findall(NUM, cells[1])
            if cited not in sections
        )
    assert not failures, "fidelity rows naming no section:\n" + "\n".join(failures)


def test_nothing_points_outside_the_repository() -> None:
    failures = []
    for path in repo_files():
        if path.resolve() == THIS:
            continue
        for number, line in text_lines(path):
            failures.extend(
                f"{rel(path)}:{number}: mentions {needle!r}" for needle in OUTSIDE if needle in line
            )
            if path.suffix != ".md":
                continue
            for target in MD_LINK.findall(line):
                if re.match(r"[a-z][a-z0-9+.-]*:|#", target):
                    continue  # a URL or an anchor
                resolved = (path.parent / target.split("#", 1)[0]).resolve()
                if not resolved.is_relative_to(ROOT):
                    failures.append(f"{rel(path)}:{number}: link {target!r} leaves the repository")
    assert not failures, "pointers outside the repository:\n" + "\n".join(failures)
