"""The README's production recipe (section "Deploy", between the ``deploy-recipe`` markers), parsed into
the settings it exports and the commands it runs, so that the production e2e test runs what the README
says and nothing else."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- deploy-recipe: begin -->\s*```sh\n(.*?)```\s*<!-- deploy-recipe: end -->", re.S)
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # NAME=value words written before the command

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


@dataclass
class Recipe:
    settings: dict[str, str]  # every exported NAME and the README's example value
    commands: list[Command]

    def command(self, prefix: str) -> Command:
        found = [c for c in self.commands if c.text.startswith(prefix)]
        assert len(found) == 1, f"the README's recipe has {len(found)} commands starting {prefix!r}"
        return found[0]


def readme_recipe(readme: Path = ROOT / "README.md") -> Recipe:
    match = BLOCK.search(readme.read_text())
    assert match, "README.md has no deploy-recipe block"
    settings: dict[str, str] = {}
    commands: list[Command] = []
    for line in match.group(1).replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            for word in words[1:]:
                name, _, value = word.partition("=")
                settings[name] = value
            continue
        env = {}
        while words and ASSIGNMENT.match(words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        commands.append(Command(argv=words, env=env))
    return Recipe(settings=settings, commands=commands)
