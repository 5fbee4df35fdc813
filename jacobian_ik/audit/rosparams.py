"""Read the parameters of one node from a ROS 2 parameter file (YAML).

A ROS 2 parameter file maps node names (optionally below namespaces) to a
``ros__parameters`` block::

    /**:                      # every node
      ros__parameters: {base_link: panda_link0, sigma_stop: 0.02}
    /arm/ik_controller:       # one node; a nested ``arm: {ik_controller: ...}`` is the same
      ros__parameters: {sigma_warn: 0.05}

``node_parameters`` merges the wildcard blocks (``/**``, ``**``) with the block
of one node, the node's values winning, as ROS does.  Nested parameter
mappings are flattened with dots (``safety: {stop: 1}`` → ``safety.stop``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from jacobian_ik.errors import ConfigurationError

WILDCARDS = ("/**", "**")

#: The controller node's name: its block is used when a file has several node blocks.
CONTROLLER_NODE = "ik_controller"


def _blocks(tree: dict, prefix: str, out: dict[str, dict], where: str) -> None:
    for key, value in tree.items():
        if not isinstance(value, dict):
            continue
        name = f"{prefix}/{key}" if prefix else str(key)
        if "ros__parameters" in value:
            params = value["ros__parameters"]
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise ConfigurationError(
                    f"{where}: 'ros__parameters' of '{name}' is not a mapping")
            out[name] = params
        else:
            _blocks(value, name, out, where)


def _flatten(params: dict, prefix: str = "") -> dict:
    flat: dict = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _canonical(name: str) -> str:
    return "/" + name.strip("/")


def _matching(names: Iterable[str], node: str) -> list[str]:
    """The first block name that is ``node`` or ends with ``/node``, as a list."""
    want = _canonical(node)
    for name in names:
        if _canonical(name) == want or _canonical(name).endswith(want):
            return [name]
    return []


def parameter_blocks(path: str | Path) -> dict[str, dict]:
    """All ``ros__parameters`` blocks of a parameter file, by node name (as written)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
    except OSError as exc:
        raise ConfigurationError(f"cannot read parameter file '{path}': {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(
            f"parameter file '{path}' is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(document, dict):
        raise ConfigurationError(
            f"parameter file '{path}' is not a ROS 2 parameter file "
            "(expected '<node>: ros__parameters: {...}')")
    blocks: dict[str, dict] = {}
    _blocks(document, "", blocks, f"parameter file '{path}'")
    if not blocks:
        raise ConfigurationError(
            f"parameter file '{path}' has no 'ros__parameters' block "
            "(expected '/**: ros__parameters: {...}' or '<node>: ros__parameters: {...}')")
    return blocks


def node_parameters(path: str | Path, node: str | None = None) -> dict:
    """The flattened parameters that node ``node`` gets from the file at ``path``.

    Without ``node``: the wildcard blocks merged with the file's only node block,
    or with the block of the controller node (``CONTROLLER_NODE``) among several;
    otherwise several node blocks need ``node`` (the error lists them).  A block
    matches a node when its name ends with the node's name (``/**/ik_controller``
    matches ``ik_controller``).
    """
    blocks = parameter_blocks(path)
    wild = [name for name in blocks if name in WILDCARDS]
    named = [name for name in blocks if name not in WILDCARDS]
    if node is not None:
        chosen = _matching(named, node)
        if not chosen:
            raise ConfigurationError(
                f"parameter file '{path}' has no block for node '{node}'; its blocks are: "
                f"{', '.join(blocks)}")
    elif len(named) > 1:
        chosen = _matching(named, CONTROLLER_NODE)
        if not chosen:
            raise ConfigurationError(
                f"parameter file '{path}' has blocks for several nodes ({', '.join(named)}) "
                f"and none for '{CONTROLLER_NODE}'; choose one with --node")
    else:
        chosen = named
    merged: dict = {}
    for name in wild + chosen:
        merged.update(_flatten(blocks[name]))
    return merged
