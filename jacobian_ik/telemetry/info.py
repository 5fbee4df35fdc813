"""Facts for the info metric: package version, URDF hash, parameter-set hash.

The controller node publishes them as key/value pairs of its ``/diagnostics``
status (keys: ``names.INFO_LABELS``); the exporter copies them into
``jacobian_ik_controller_info``.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jacobian_ik.params import ControllerParams

PACKAGE = "jacobian_ik"


def package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def urdf_sha256(urdf_source: str) -> str:
    """sha256 of the URDF: of the XML text, or of the file's bytes for a path."""
    if urdf_source.lstrip().startswith("<"):
        data = urdf_source.encode("utf-8")
    else:
        try:
            with open(urdf_source, "rb") as stream:
                data = stream.read()
        except OSError:
            data = urdf_source.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def parameters_sha256(params: ControllerParams) -> str:
    """sha256 of the controller parameter set (``ControllerParams.to_dict``, sorted JSON)."""
    text = json.dumps(params.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def info_values(urdf_source: str, base_link: str, tip_link: str,
                params: ControllerParams) -> dict[str, str]:
    """The info metric's labels ({label: value}, keys ``names.INFO_LABELS``)."""
    return {"version": package_version(), "urdf_sha256": urdf_sha256(urdf_source),
            "base_link": base_link, "tip_link": tip_link,
            "parameters_sha256": parameters_sha256(params)}
