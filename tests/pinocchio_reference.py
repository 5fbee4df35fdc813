"""Reference kinematics computed directly with pinocchio, for comparison tests.

Independent of ``jacobian_ik.robot``'s chain extraction: the whole URDF is built
as one pinocchio model, the chain joints are set from our one-number-per-joint
vector (continuous joints as (cos, sin)), all other joints stay at neutral.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin


class PinocchioChain:
    """pinocchio's FK and Jacobian of ``tip_link`` relative to ``base_link``."""

    def __init__(self, urdf: str, base_link: str, tip_link: str, joint_names):
        self.model = pin.buildModelFromUrdf(str(urdf))
        self.data = self.model.createData()
        self.base = self.model.getFrameId(base_link, pin.BODY)
        self.tip = self.model.getFrameId(tip_link, pin.BODY)
        self.joint_ids = [self.model.getJointId(name) for name in joint_names]

    def q_pin(self, q) -> np.ndarray:
        """Our joint vector → pinocchio's configuration vector."""
        qp = pin.neutral(self.model)
        for value, jid in zip(q, self.joint_ids):
            joint = self.model.joints[jid]
            if joint.nq == 2:  # continuous: (cos, sin)
                qp[joint.idx_q] = np.cos(value)
                qp[joint.idx_q + 1] = np.sin(value)
            else:
                qp[joint.idx_q] = value
        return qp

    def fk(self, q) -> np.ndarray:
        """T_base_tip. Shape (4, 4)."""
        pin.framesForwardKinematics(self.model, self.data, self.q_pin(q))
        return (self.data.oMf[self.base].inverse() * self.data.oMf[self.tip]).homogeneous

    def jacobian(self, q, frame: str = "base") -> np.ndarray:
        """Tip Jacobian over our joints: 'base' (expressed in the base frame, tip
        origin) or 'tip' (pinocchio LOCAL). Shape (6, n)."""
        qp = self.q_pin(q)
        pin.computeJointJacobians(self.model, self.data, qp)
        pin.framesForwardKinematics(self.model, self.data, qp)
        ref = pin.LOCAL if frame == "tip" else pin.LOCAL_WORLD_ALIGNED
        J_full = pin.getFrameJacobian(self.model, self.data, self.tip, ref)
        cols = [self.model.joints[jid].idx_v for jid in self.joint_ids]
        J = J_full[:, cols]
        if frame == "base":
            R_world_base = self.data.oMf[self.base].rotation
            J = np.vstack([R_world_base.T @ J[:3], R_world_base.T @ J[3:]])
        return J
