"""The README's Layout section is the tree: every folder that builds
something (has a meson.build) is named there, by its path's last part
indented under its parent, and nothing is named that does not exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layout_block():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Layout\n"):]
    return section[section.index("```\n") + 4:section.index("\n```", section.index("```\n") + 4)]


def built_folders():
    found = set()
    for p in ROOT.rglob("meson.build"):
        rel = p.parent.relative_to(ROOT)
        if rel.parts and (rel.parts[0].startswith(("build", ".")) or "node_modules" in rel.parts):
            continue
        if rel.parts:
            found.add(rel.as_posix())
    return found


def named_folders():
    """The folders the block names, as paths: a name in the first 20 columns
    ("x/", indented two spaces a level under the last less indented one), and
    in its description a "y/" that stands for x/y (as tests/ lists its own)."""
    stack, named = [], set()
    for line in layout_block().splitlines():
        head, desc = line[:20], line[20:]
        m = re.match(r"^( *)([\w.][\w./-]*/)(?= |$)", head)
        if m:
            depth = len(m.group(1)) // 2
            stack = stack[:depth] + [m.group(2).rstrip("/")]
            named.add("/".join(stack))
        for sub in re.findall(r"(?<![\w/.])([\w-]+)/(?=[ ,)]|$)", desc):
            named.add("/".join(stack + [sub]))
    return named


def test_readme_layout_names_every_folder_that_builds_something():
    assert sorted(built_folders() - named_folders() - {"daemon"}) == []


def test_readme_layout_names_only_folders_that_exist():
    assert sorted(p for p in named_folders() if not (ROOT / p).is_dir()) == []
