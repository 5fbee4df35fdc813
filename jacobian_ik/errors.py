"""Typed exceptions raised for definition and configuration errors.

Everything the package raises on purpose derives from :class:`JacobianIkError`,
so a caller can catch one class.  Runtime events of the control loop (near
singularity, joint limit, stale input) are never exceptions: they are states
and flags in the controller's result.

Besides its message (``str(error)``), each error carries what it is about as
attributes, so a caller can react without parsing text: ``ChainError.link`` and
``.choices`` (the valid links), ``ConfigurationError.parameter``, ``.value``,
``.choices`` and ``.valid_range``, ``UrdfError.path``, ``.joint`` and ``.link``,
``SrdfError.path``, ``.link`` and ``.choices``.
An attribute the raiser does not know is None (or ``()`` for ``choices``).
"""

from __future__ import annotations

from typing import Any


class JacobianIkError(Exception):
    """Base class of every error raised by jacobian_ik."""


class UrdfError(JacobianIkError):
    """The robot description cannot be read: missing file, malformed XML,
    non-finite numbers, or a model pinocchio rejects.

    ``path``: the URDF file, when it came from one; ``joint`` / ``link``: the
    element of the description at fault, when there is one.
    """

    def __init__(self, message: str, *, path: str | None = None, joint: str | None = None,
                 link: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.joint = joint
        self.link = link


class ChainError(JacobianIkError):
    """The requested kinematic chain cannot be built from the description:
    unknown link, tip not below base, empty chain, unsupported joint.

    ``link``: the link at fault (an unknown base or tip, a tip not below the
    base); ``joint``: the joint at fault (an unsupported type, a mimic joint);
    ``choices``: the valid alternatives (links, joint types), ``()`` if none apply.
    """

    def __init__(self, message: str, *, link: str | None = None, joint: str | None = None,
                 choices: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.link = link
        self.joint = joint
        self.choices = tuple(choices)


class ConfigurationError(JacobianIkError):
    """A parameter or option is outside its valid set or range.

    ``parameter``: the name of the parameter or option at fault (``name[i]`` for
    one element of a per-joint value); ``value``: the value refused;
    ``choices``: the valid values of a choice, ``()`` otherwise;
    ``valid_range``: (minimum, maximum) of a number, None for no range (a bound
    is None when open-ended).
    """

    def __init__(self, message: str, *, parameter: str | None = None, value: Any = None,
                 choices: tuple[Any, ...] = (),
                 valid_range: tuple[float | None, float | None] | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.value = value
        self.choices = tuple(choices)
        self.valid_range = valid_range


class SrdfError(JacobianIkError):
    """A collision matrix (SRDF) cannot be used: missing file, malformed XML, or a
    ``<disable_collisions>`` entry naming a link the robot description lacks.

    ``path``: the SRDF file, when it came from one; ``link``: the link at fault;
    ``choices``: the valid links (those with collision geometry), ``()`` if none apply.
    """

    def __init__(self, message: str, *, path: str | None = None, link: str | None = None,
                 choices: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.link = link
        self.choices = tuple(choices)


class SceneError(JacobianIkError):
    """An obstacle of a scene cannot be used: unknown type, non-finite or non-positive
    size, a pose that is not a rigid transform, a malformed scene file.

    ``obstacle``: the obstacle's name, when known; ``field``: the field at fault.
    """

    def __init__(self, message: str, *, obstacle: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.obstacle = obstacle
        self.field = field
