"""The ``<collision>`` elements of a URDF, as points (with radii) in each link's frame.

Each link's collision elements (any number; ``<box>``, ``<cylinder>``, ``<sphere>``,
``<mesh>``) become one set of balls whose convex hull contains the link's collision
geometry, which is what a conservative capsule needs to enclose:

* a mesh: its vertices (radius 0), scaled by the element's ``scale``;
* a box: its 8 corners;
* a cylinder: the corners of the two polygons of ``CYLINDER_SIDES`` sides
  circumscribed about its end circles (the polygons contain the circles, so the
  hull of the corners contains the cylinder; the corners are at most
  1/cos(π/CYLINDER_SIDES) − 1 = 0.12 % of the radius outside it);
* a sphere: its centre with the sphere's radius.

Every point is in the link frame [m]: the element's ``<origin>`` is applied.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jacobian_ik.collision import packages
from jacobian_ik.collision.meshes import mesh_vertices
from jacobian_ik.errors import UrdfError

#: Sides of the polygon circumscribed about a cylinder's end circle.
CYLINDER_SIDES = 64

#: The geometry elements read from a ``<collision>``.
SUPPORTED_SHAPES = ("box", "cylinder", "sphere", "mesh")


@dataclass(frozen=True)
class LinkShapes:
    """A link's collision geometry as balls in the link frame.

    ``points`` Shape (N, 3) [m] and ``radii`` Shape (N,) [m] (0 for a point):
    the convex hull of the balls contains every collision element of the link.
    ``elements``: how many ``<collision>`` elements the link has.
    """

    link: str
    points: np.ndarray
    radii: np.ndarray
    elements: int


def links_with_collision(root: ET.Element) -> list[str]:
    """Names of the links that have at least one ``<collision>`` element, in URDF order."""
    return [el.get("name", "") for el in root.findall("link")
            if el.find("collision") is not None]


def read_link_shapes(root: ET.Element, links: Collection[str], *, urdf_dir: Path | None,
                     package_dirs: Sequence[str | Path] = (),
                     urdf_path: str | None = None) -> dict[str, LinkShapes]:
    """``LinkShapes`` of each of ``links`` (links with ``<collision>``) of the parsed URDF
    ``root``; meshes are found as ``packages.resolve`` describes.

    UrdfError for a mesh that is not found (naming the link, the file name and the
    places looked at), an unsupported or malformed geometry, or non-finite numbers.
    """
    wanted = set(links)
    out = {}
    for el in root.findall("link"):
        name = el.get("name", "")
        if name not in wanted:
            continue
        points: list[np.ndarray] = []
        radii: list[np.ndarray] = []
        collisions = el.findall("collision")
        for collision in collisions:
            p, r = _element_balls(collision, name, urdf_dir, package_dirs, urdf_path)
            points.append(p)
            radii.append(r)
        if points:
            out[name] = LinkShapes(name, np.concatenate(points), np.concatenate(radii),
                                   len(collisions))
    return out


def _element_balls(collision: ET.Element, link: str, urdf_dir: Path | None,
                   package_dirs: Sequence[str | Path],
                   urdf_path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Balls of one ``<collision>`` element in the link frame: (Shape (N, 3), Shape (N,))."""
    T = origin_matrix(collision.find("origin"), f"link '{link}' <collision> <origin>")
    geometry = collision.find("geometry")
    shape = None if geometry is None or len(geometry) == 0 else geometry[0]
    if shape is None or shape.tag not in SUPPORTED_SHAPES:
        found = "nothing" if shape is None else f"<{shape.tag}>"
        raise UrdfError(
            f"link '{link}': <collision> <geometry> holds {found}; supported shapes are: "
            f"{', '.join(SUPPORTED_SHAPES)}", link=link, path=urdf_path)
    what = f"link '{link}' <collision> <{shape.tag}>"
    radius = np.zeros(0)
    if shape.tag == "box":
        size = _numbers(shape, "size", what, 3)
        corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
        local = 0.5 * corners * size
    elif shape.tag == "cylinder":
        r, length = _numbers(shape, "radius", what, 1)[0], _numbers(shape, "length", what, 1)[0]
        angles = 2.0 * math.pi * np.arange(CYLINDER_SIDES) / CYLINDER_SIDES
        rim = r / math.cos(math.pi / CYLINDER_SIDES)
        ring = np.column_stack([rim * np.cos(angles), rim * np.sin(angles),
                                np.zeros(CYLINDER_SIDES)])
        local = np.concatenate([ring + (0.0, 0.0, -0.5 * length),
                                ring + (0.0, 0.0, 0.5 * length)])
    elif shape.tag == "sphere":
        local = np.zeros((1, 3))
        radius = np.array([_numbers(shape, "radius", what, 1)[0]])
    else:
        local = _mesh_points(shape, link, urdf_dir, package_dirs, urdf_path, what)
    if radius.size == 0:
        radius = np.zeros(len(local))
    return local @ T[:3, :3].T + T[:3, 3], radius


def _mesh_points(shape: ET.Element, link: str, urdf_dir: Path | None,
                 package_dirs: Sequence[str | Path], urdf_path: str | None,
                 what: str) -> np.ndarray:
    filename = shape.get("filename")
    if not filename:
        raise UrdfError(f"{what} has no filename", link=link, path=urdf_path)
    path, looked = packages.resolve(filename, urdf_dir=urdf_dir, package_dirs=package_dirs)
    if path is None:
        raise UrdfError(
            f"link '{link}': mesh '{filename}' not found; looked in: "
            f"{', '.join(looked) if looked else '(nowhere: no package folder known)'}",
            link=link, path=urdf_path)
    scale = np.ones(3)
    if shape.get("scale") is not None:
        values = _numbers(shape, "scale", what, None)
        if len(values) not in (1, 3):
            raise UrdfError(f"{what} scale='{shape.get('scale')}' needs 1 or 3 numbers",
                            link=link, path=urdf_path)
        scale = scale * values
    return mesh_vertices(path, link) * scale


def _numbers(el: ET.Element, attr: str, what: str, count: int | None) -> np.ndarray:
    text = el.get(attr)
    if text is None:
        raise UrdfError(f"{what} has no {attr}")
    values = parse_numbers(text, f"{what} {attr}")
    if count is not None and len(values) != count:
        raise UrdfError(f"{what} {attr}='{text}' needs {count} number(s)")
    if attr != "scale" and (values < 0).any():
        raise UrdfError(f"{what} {attr}='{text}' is negative")
    return values


def parse_numbers(text: str, what: str) -> np.ndarray:
    """The finite numbers of an attribute value, Shape (k,); UrdfError otherwise."""
    try:
        values = np.array([float(tok) for tok in text.split()])
    except ValueError:
        raise UrdfError(f"{what} is not a list of numbers: '{text}'") from None
    if not np.isfinite(values).all():
        raise UrdfError(f"{what} has a non-finite number: '{text}'")
    return values


def origin_matrix(origin: ET.Element | None, what: str) -> np.ndarray:
    """The homogeneous transform of a URDF ``<origin xyz= rpy=>`` (identity when absent).

    Shape (4, 4); ``rpy`` is fixed-axis roll, pitch, yaw: R = Rz(yaw) Ry(pitch) Rx(roll).
    """
    T = np.eye(4)
    if origin is None:
        return T
    xyz = parse_numbers(origin.get("xyz", "0 0 0"), f"{what} xyz")
    rpy = parse_numbers(origin.get("rpy", "0 0 0"), f"{what} rpy")
    if len(xyz) != 3 or len(rpy) != 3:
        raise UrdfError(f"{what} needs three numbers in xyz and in rpy")
    cr, sr = math.cos(rpy[0]), math.sin(rpy[0])
    cp, sp = math.cos(rpy[1]), math.sin(rpy[1])
    cy, sy = math.cos(rpy[2]), math.sin(rpy[2])
    T[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                 [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                 [-sp, cp * sr, cp * cr]]
    T[:3, 3] = xyz
    return T
