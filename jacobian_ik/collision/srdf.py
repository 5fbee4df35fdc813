"""The collision matrix as an SRDF: ``<disable_collisions link1= link2= reason=/>``.

The ROS convention (MoveIt's SRDF): each entry names a pair of links whose
collisions are not checked, and why: ``Adjacent`` (joined by a joint), ``Default``
(in contact at the default configuration), ``Always`` (in contact almost
everywhere), ``Never`` (never near each other), ``User``.  Everything else of an
SRDF (groups, states, end effectors) is ignored here.  Pairs are kept with their
two names in alphabetical order.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol
from xml.sax.saxutils import quoteattr

from jacobian_ik.errors import SrdfError

#: The reason of an entry without one.
DEFAULT_REASON = "User"

#: A link pair in alphabetical order.
Pair = tuple[str, str]


class _HasDisabled(Protocol):
    @property
    def disabled(self) -> Mapping[Pair, str]: ...


#: What ``write_srdf`` takes: a collision model, a pair → reason mapping, or pairs.
DisabledPairs = _HasDisabled | Mapping[Pair, str] | Iterable[tuple[str, ...]]


def pair(link1: str, link2: str) -> Pair:
    """The pair of two links, names in alphabetical order."""
    return (link1, link2) if link1 <= link2 else (link2, link1)


def read_disabled(source: str | Path) -> tuple[dict[Pair, str], str | None]:
    """The ``<disable_collisions>`` entries of an SRDF file path or XML string:
    (pair → reason, the file path or None).  SrdfError if it cannot be read."""
    path = None
    if isinstance(source, str) and source.lstrip().startswith("<"):
        text, what = source, "SRDF string"
    else:
        path = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SrdfError(f"SRDF file '{source}' does not exist", path=path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SrdfError(f"cannot read SRDF file '{source}': {exc}", path=path) from None
        what = f"SRDF file '{source}'"
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SrdfError(f"{what} is not well-formed XML: {exc}", path=path) from None
    if root.tag != "robot":
        raise SrdfError(f"{what} has root element <{root.tag}>; an SRDF's root is <robot>",
                        path=path)
    out: dict[Pair, str] = {}
    for el in root.iter("disable_collisions"):
        link1, link2 = el.get("link1"), el.get("link2")
        if not link1 or not link2:
            raise SrdfError(f"{what} has a <disable_collisions> without link1 or link2",
                            path=path)
        out[pair(link1, link2)] = el.get("reason") or DEFAULT_REASON
    return out, path


def disabled_mapping(pairs: DisabledPairs) -> dict[Pair, str]:
    """pair → reason from a model, a mapping or pairs ((a, b) or (a, b, reason))."""
    source: object = getattr(pairs, "disabled", pairs)
    if isinstance(source, Mapping):
        return {pair(*key): str(reason) for key, reason in source.items()}
    if not isinstance(source, Iterable):
        raise SrdfError(f"disabled pairs must be a collision model, a mapping or pairs; "
                        f"got {type(source).__name__}")
    out = {}
    for entry in source:
        if len(entry) not in (2, 3):
            raise SrdfError(f"a disabled pair is (link1, link2) or (link1, link2, reason); "
                            f"got {entry!r}")
        out[pair(entry[0], entry[1])] = entry[2] if len(entry) == 3 else DEFAULT_REASON
    return out


def write_srdf(pairs: DisabledPairs, robot_name: str, comment: str | None = None) -> str:
    """An SRDF document with one ``<disable_collisions>`` per pair (sorted), for the
    robot named ``robot_name``; ``comment`` goes into an XML comment at the top."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>']
    if comment:
        body = comment.replace("--", "- -")  # the one sequence a comment cannot hold
        lines.append("<!--")
        lines.extend(f"  {line}".rstrip() for line in body.splitlines())
        lines.append("-->")
    lines.append(f"<robot name={quoteattr(robot_name)}>")
    for (link1, link2), reason in sorted(disabled_mapping(pairs).items()):
        lines.append(f"  <disable_collisions link1={quoteattr(link1)} "
                     f"link2={quoteattr(link2)} reason={quoteattr(reason)}/>")
    lines.append("</robot>")
    return "\n".join(lines) + "\n"
