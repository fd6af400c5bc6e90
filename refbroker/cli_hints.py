""""Did you mean ...?" for the project's command lines: an argparse parser that suggests the nearest
option or command when it is given one it does not know (Python 3.11's argparse does not).

    parser = SuggestingArgumentParser(prog="python -m refbroker")
    ...
    $ python -m refbroker --prot 1884
    python -m refbroker: error: unrecognized arguments: --prot (did you mean --port?)

Also `suggest(word, known)`, the one difflib rule the CLIs and config readers share.
"""

from __future__ import annotations

import argparse
import difflib
import re
import textwrap
from collections.abc import Iterable

__all__ = ["SuggestingArgumentParser", "suggest", "suggestion_text"]


def suggest(word: str, known: Iterable[str], n: int = 1) -> list[str]:
    """The `n` entries of `known` nearest to `word` (difflib's ratio of at least 0.6), nearest first."""
    return difflib.get_close_matches(word, list(known), n=n, cutoff=0.6)


def suggestion_text(word: str, known: Iterable[str]) -> str:
    """" (did you mean X?)" or "" when nothing is near."""
    found = suggest(word, known)
    return f" (did you mean {found[0]}?)" if found else ""


class SuggestingArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose errors for unknown options and commands name the nearest known one.

    Help texts keep their line breaks (argparse.RawDescriptionHelpFormatter), so epilogs can show example
    commands; a one-paragraph description is wrapped here instead.
    """

    def __init__(self, *args, **kwargs):
        self.option_names: set[str] = set()  # every option string of this parser (add_argument records them)
        self.command_actions: list[argparse.Action] = []  # the add_subparsers() actions
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        description = kwargs.get("description")
        if description and "\n" not in description:
            kwargs["description"] = textwrap.fill(description, 88)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        self.option_names.update(action.option_strings)
        return action

    def add_subparsers(self, **kwargs):
        action = super().add_subparsers(**kwargs)
        self.command_actions.append(action)
        return action

    def all_options(self) -> set[str]:
        """The option strings of this parser and of every command's parser below it."""
        options = set(self.option_names)
        for action in self.command_actions:
            for sub in (action.choices or {}).values():
                if isinstance(sub, SuggestingArgumentParser):
                    options |= sub.all_options()
        return options

    def error(self, message: str):  # type: ignore[override]
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            options = self.all_options()
            words = []
            for word in unknown.group(1).split():
                name = word.split("=", 1)[0]
                words.append(word + (suggestion_text(name, options) if name.startswith("-") else ""))
            message = "unrecognized arguments: " + " ".join(words)
        choice = re.match(r"(argument .*: invalid choice: '([^']*)' \(choose from (.*)\))", message)
        if choice:
            known = re.findall(r"'([^']*)'", choice.group(3))
            message = choice.group(1) + suggestion_text(choice.group(2), known)
        super().error(message)
