"""A small typed writer of systemd unit files (the syntax Quadlet reads), with strict escaping.

A value reaches the container through two readers, and is escaped for both:

1. Quadlet reads the ``.container`` file. Keys documented as lists of words (``Exec``,
   ``PodmanArgs``, ``Environment``, ``Label``, ``Secret``) are split like ``ExecStart=``:
   whitespace separates words, ``"..."`` quotes, C escapes (``\\"``, ``\\\\``, ``\\n``) are
   decoded. Other keys (``Image``, ``Volume``, ``PublishPort``, ``HealthCmd``, ...) are taken
   as the raw text of the line.
2. Quadlet writes every value into the generated service's ``ExecStart=``, which systemd reads:
   there ``%`` starts a specifier (``%h``, ``%n``) and ``$`` an environment variable, so a literal
   ``%`` is written ``%%`` and a literal ``$`` is written ``$$``. Keys systemd reads directly
   (``[Unit]``, ``[Service]``, ``[Install]``) expand specifiers but not variables.

What no unit file can carry (a line break or a control character in a raw value, a value with
leading whitespace or a trailing backslash) is a :class:`~llmdeploy.errors.RenderError`
naming the key, never a silently different unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from llmdeploy.errors import RenderError

# characters that force a word into double quotes (as Quadlet's own escapeWords decides)
_NEEDS_QUOTES = frozenset(' \t\n\r\v\f"\'\\')
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\v": "\\v",
              "\f": "\\f"}

# who reads a section's values last: systemd's ExecStart (Quadlet's own sections) or
# systemd's unit parser (Unit, Service, Install)
ValueReader = Literal["exec", "unit"]


def escape_percent(text: str) -> str:
    """``%`` -> ``%%``: systemd reads a lone ``%`` as a specifier."""
    return text.replace("%", "%%")


def escape_for(reader: ValueReader, text: str) -> str:
    """Escape specifiers (and, in ExecStart, environment variables) in ``text``."""
    text = escape_percent(text)
    return text.replace("$", "$$") if reader == "exec" else text


def quote_word(word: str) -> str:
    """One word of an exec-style list: bare when it can be, else in double quotes with C
    escapes. Specifiers and variables are not escaped here (see :func:`escape_for`)."""
    if word and not any(c in _NEEDS_QUOTES for c in word) and not _has_control(word):
        return word
    body = "".join(_C_ESCAPES.get(c, c if c.isprintable() else f"\\x{ord(c):02x}") for c in word)
    return f'"{body}"'


def _has_control(text: str) -> bool:
    return any(not c.isprintable() for c in text)


@dataclass
class _Line:
    key: str | None  # None: a comment line
    value: str


@dataclass
class UnitSection:
    """One ``[Name]`` section; values are escaped for ``reader`` as they are added."""

    name: str
    reader: ValueReader
    lines: list[_Line] = field(default_factory=list)

    def raw(self, key: str, value: str) -> UnitSection:
        """``key=value`` for a key read as the raw text of its line (``Image``, ``Volume``,
        ``HealthCmd``, ``Restart``): specifiers (and variables) escaped, nothing quoted."""
        if _has_control(value) or value != value.strip() or value.endswith("\\"):
            raise RenderError(
                f"[{self.name}] {key}: {value!r} cannot be written in a unit file "
                "(control characters, surrounding whitespace or a trailing backslash)"
            )
        self.lines.append(_Line(key, escape_for(self.reader, value)))
        return self

    def words(self, key: str, *words: str) -> UnitSection:
        """``key=w1 w2 ...`` for a key split into words like ``ExecStart=`` (``Exec``,
        ``PodmanArgs``): each word quoted as needed."""
        text = " ".join(quote_word(escape_for(self.reader, w)) for w in words)
        self.lines.append(_Line(key, text))
        return self

    def assignment(self, key: str, name: str, value: str) -> UnitSection:
        """``key=NAME=VALUE`` as one word (``Environment``, ``Label``)."""
        return self.words(key, f"{name}={value}")

    def comment(self, *texts: str) -> UnitSection:
        for text in texts:
            self.lines.extend(_Line(None, line) for line in text.splitlines() or [""])
        return self


@dataclass
class UnitFile:
    """A unit file: header comments, then sections in the order they were added."""

    header: list[str] = field(default_factory=list)
    sections: list[UnitSection] = field(default_factory=list)

    def section(self, name: str, reader: ValueReader = "unit") -> UnitSection:
        new = UnitSection(name, reader)
        self.sections.append(new)
        return new

    def text(self) -> str:
        out = [_comment(line) for text in self.header for line in text.splitlines() or [""]]
        for section in self.sections:
            if out:
                out.append("")
            out.append(f"[{section.name}]")
            for line in section.lines:
                out.append(_comment(line.value) if line.key is None else f"{line.key}={line.value}")
        return "\n".join(out) + "\n"


def _comment(text: str) -> str:
    if _has_control(text) or text.endswith("\\"):
        raise RenderError(
            f"a unit-file comment cannot hold control characters or end in a backslash: {text!r}"
        )
    return f"# {text}".rstrip()
