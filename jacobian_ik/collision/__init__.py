"""Collision geometry of the arm: one conservative capsule per link, and which pairs
of them are checked.

``model.CollisionModel`` reads the ``<collision>`` elements of a URDF
(``urdf_geometry``; meshes found by ``packages``, read by ``meshes``), fits one
capsule around each link's geometry (``fit``), places it in the chain frame it moves
with (``attach``), and takes the self-collision pairs from an SRDF (``srdf``) or from
a sampled collision matrix (``matrix``, with ``sweep`` for pairs one or two joints
apart, cached by ``cache``).  ``command`` is what ``jacobian-ik collision-matrix``
runs; ``scene`` holds static obstacles.

Importing this package imports none of its modules (nor pinocchio or coal).
"""
