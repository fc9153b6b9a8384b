"""Build-time additions to the documentation site (an MkDocs hook, see ``mkdocs.yml``).

* ``cli.md``: the command-line reference, written from the ``dynsim`` argparse parsers themselves, so it cannot
  drift from ``dynsim --help``.
* `index.md`, the home page: the README, its links into `docs/` made relative to the site, so the two cannot
  drift apart.
* The notebooks (``notebooks/*.ipynb``, rendered by mkdocs-jupyter) and the gallery images (``figures/*.png``) are
  served from where they live in the repository, not copied into ``docs/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent


def cli_reference() -> str:
    """The ``dynsim`` command's reference page: every command's ``--help``."""
    from dynsim.cli import commands

    parts = ["# Command line", "",
             "`dynsim` is installed with the package. Every command below prints this text with `--help`; the page "
             "is generated from the same parsers when the site is built.", ""]
    for prog, parser in commands():
        parser.prog = prog
        parts += [f"## `{prog}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def home_page() -> str:
    """The README as the site's home page: its links into `docs/` point at the same pages of the site."""
    return re.sub(r"\]\(docs/", "](", (ROOT / "README.md").read_text())


def on_files(files, config):
    files.append(File.generated(config, "index.md", content=home_page()))
    files.append(File.generated(config, "cli.md", content=cli_reference()))
    for folder, pattern in (("notebooks", "*.ipynb"), ("figures", "*.png")):
        for path in sorted((ROOT / folder).glob(pattern)):
            files.append(File.generated(config, f"{folder}/{path.name}", abs_src_path=str(path)))
    return files
