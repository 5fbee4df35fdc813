"""Small-integer codes shared by the control kernels and the Python side: target
modes (``MODE_*``), states (``S_*``), reasons (``R_*``) and the bits of the
``limited`` mask (``L_*``).  ``jacobian_ik.safety`` names them and writes their
messages."""

# ---------------------------------------------------------------- modes (target kinds)
MODE_HOLD = 0      # no target
MODE_POSE = 1      # (4, 4) T_base_target
MODE_TWIST = 2     # (6,) twist, base frame, linear first
MODE_BAD = 3       # the caller found the input malformed (shape, type)
MODE_BAD_TARGET = 4  # the caller found the target malformed; q was read

# ---------------------------------------------------------------- states
S_TRACKING = 0
S_APPROACHING = 1
S_SAFE_STOP = 2
S_INVALID = 3
S_STALE = 4
S_JOINT_LIMIT = 5
S_PAUSED = 6
S_IDLE = 7
S_JOINT_MOVE = 8
S_APPROACHING_COLLISION = 9

# ---------------------------------------------------------------- reasons
R_TRACKING = 0
R_GOAL = 1
R_APPROACH = 2          # val1 = sigma_min
R_STOP_SIGMA = 3        # val1 = sigma_min
R_STOP_PREDICT = 4      # val1 = predicted sigma_min, val2 = sigma_min
R_LATCHED = 5           # val1 = sigma_min
R_LEAVING = 6           # val1 = sigma_min, val2 = predicted sigma_min
R_BAD_INPUT = 7         # set by the caller
R_BAD_Q = 8             # val1 = joint index
R_BAD_TARGET = 9
R_BAD_POSE = 10         # val1 = orthonormality error
R_BAD_DT = 11           # val1 = dt
R_BAD_AGE = 12          # val1 = measurement age, val2 = target age
R_STALE_MEAS = 13       # val1 = age
R_STALE_TARGET = 14     # val1 = age
R_JOINT_OUT = 15        # val1 = joint index, val2 = position
R_JOINT_LEAVING = 16    # val1 = joint index, val2 = position
R_PAUSED = 17
R_IDLE = 18
R_BRAKING = 19          # val1 = predicted sigma_min, val2 = sigma_min
R_AHEAD = 20            # val1 = sigma_min, val2 = seconds since the look-ahead braked
R_APPROACH_BAND = 21    # val1 = sigma_min (within the hysteresis band above sigma_warn)
R_BARRIER = 22          # val1 = sigma_min: sliding along the sigma_min barrier
R_BLOCKED_SIGMA = 23    # val1 = sigma_min, val2 = seconds without progress
R_BLOCKED_JOINT = 24    # val1 = joint index, val2 = seconds without progress
R_UNREACHABLE = 25      # val1 = sigma_min
R_JOINT_MOVE = 26       # val1 = largest joint distance to q_goal [rad | m]
R_FROZEN = 27           # val1 = frozen time [s], val2 = largest commanded speed
R_TARGET_EXPIRED = 28   # val1 = twist target age [s]; the brake has finished
R_COLLISION = 29         # val1 = distance [m], val2 = pair index: sliding along a pair's barrier
R_COLLISION_BRAKING = 30  # val1 = predicted distance [m], val2 = pair index
R_BLOCKED_COLLISION = 31  # val1 = distance [m], val2 = pair index; no progress
R_UNREACHABLE_COLLISION = 32  # val1 = distance [m], val2 = pair index
NREASONS = 33

# ---------------------------------------------------------------- limited bits
L_CARTESIAN = 1
L_VELOCITY = 2
L_ACCELERATION = 4
L_POSITION = 8
L_SINGULARITY = 16
L_COLLISION = 32
