"""SynthPose body model: proportions, joint-angle pose sampling, forward kinematics.

Body frame: x = the person's left, y = up, z = the direction the person faces; unit = body
height. Joints are returned in the order of `kdlib.skeletons.SKELETONS['superset']`.
Angles (degrees) are sampled per pose type within the limits below (clipped), so that rare poses
(squatting, arms raised, bending, kicking) appear with a domain-controlled frequency.
"""
from __future__ import annotations

import numpy as np

from kdlib.skeletons import SUPERSET_JOINTS

J = {n: i for i, n in enumerate(SUPERSET_JOINTS)}
NUM_JOINTS = len(SUPERSET_JOINTS)

# Mean proportions (fractions of body height; adult anthropometric averages, rounded).
PROPORTIONS = dict(torso=0.29, neck=0.05, head=0.062, shoulder=0.235, hip=0.17, upper_arm=0.17,
                   forearm=0.155, thigh=0.245, shin=0.245, foot=0.13, ankle_h=0.04)
RADII = dict(upper_arm=0.033, forearm=0.027, thigh=0.05, shin=0.038, neck=0.028, hand=0.03,
             foot=0.022, torso=0.03)

# Joint-angle limits (degrees): flexion forward positive, abduction outward positive.
LIMITS = dict(hip_flex=(-35, 125), hip_abd=(-10, 70), knee=(0, 150), sho_flex=(-50, 180),
              sho_abd=(-10, 180), elbow=(0, 150), arm_twist=(-60, 90), torso_pitch=(-25, 95),
              torso_roll=(-25, 25), torso_twist=(-35, 35), head_yaw=(-70, 70),
              head_pitch=(-35, 45), ankle=(-25, 35))

POSE_TYPES = ('stand', 'walk', 'arms_up', 'squat', 'bend', 'kick', 'free')


def rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def sample_proportions(rng, spread: float = 0.08, build: float = 1.0) -> dict:
    """Per-person lengths and radii: each jittered by ~N(1, spread); `build` scales the radii."""
    p = {k: v * (1 + spread * rng.standard_normal()) for k, v in PROPORTIONS.items()}
    limb = 1 + spread * rng.standard_normal()       # long-limbed vs short-limbed people
    for k in ('upper_arm', 'forearm', 'thigh', 'shin'):
        p[k] *= limb
    bulk = build * (1 + 1.5 * spread * rng.standard_normal())
    p['radii'] = {k: max(0.4, bulk) * v for k, v in RADII.items()}
    return p


def _side(rng, base: dict) -> dict:
    """Angles of one side: base (mean, std) pairs -> samples."""
    return {k: rng.normal(m, s) for k, (m, s) in base.items()}


def sample_pose(rng, pose_type: str) -> dict:
    """Joint angles (degrees) for one pose type, clipped to LIMITS. Keys: per side 'l_*'/'r_*'."""
    stand_leg = dict(hip_flex=(0, 8), hip_abd=(6, 5), knee=(5, 6), ankle=(0, 5))
    stand_arm = dict(sho_flex=(5, 15), sho_abd=(15, 10), elbow=(20, 20), arm_twist=(10, 25))
    legs = [stand_leg, stand_leg]
    arms = [stand_arm, stand_arm]
    body = dict(torso_pitch=(5, 6), torso_roll=(0, 5), torso_twist=(0, 10),
                head_yaw=(0, 25), head_pitch=(0, 12))
    s = rng.integers(2)                              # which side leads
    if pose_type == 'walk':
        legs = [dict(stand_leg, hip_flex=(30, 10), knee=(25, 15)),
                dict(stand_leg, hip_flex=(-20, 8), knee=(30, 15))]
        arms = [dict(stand_arm, sho_flex=(-30, 10)), dict(stand_arm, sho_flex=(35, 12), elbow=(45, 20))]
    elif pose_type == 'arms_up':
        up = dict(sho_flex=(165, 20), sho_abd=(30, 30), elbow=(25, 30), arm_twist=(20, 30))
        side = dict(sho_abd=(150, 25), sho_flex=(10, 20), elbow=(30, 30), arm_twist=(0, 30))
        arms = [up, up if rng.random() < 0.6 else side] if rng.random() < 0.6 else [side, side]
    elif pose_type == 'squat':
        legs = [dict(stand_leg, hip_flex=(100, 15), hip_abd=(20, 8), knee=(125, 15), ankle=(20, 8))] * 2
        arms = [dict(stand_arm, sho_flex=(70, 25), elbow=(40, 30))] * 2
        body.update(torso_pitch=(30, 10))
    elif pose_type == 'bend':
        legs = [dict(stand_leg, knee=(15, 10))] * 2
        arms = [dict(stand_arm, sho_flex=(70, 25), elbow=(20, 20))] * 2
        body.update(torso_pitch=(65, 15), head_pitch=(-20, 10))
    elif pose_type == 'kick':
        legs = [dict(stand_leg, hip_flex=(75, 20), knee=(25, 25)), dict(stand_leg, knee=(15, 10))]
        arms = [dict(stand_arm, sho_abd=(70, 20)), dict(stand_arm, sho_abd=(60, 20), sho_flex=(30, 20))]
    elif pose_type == 'free':
        lo_hi = {k: LIMITS[k] for k in ('hip_flex', 'hip_abd', 'knee', 'ankle')}
        legs = [{k: ((lo + hi) / 2 * 0.5, (hi - lo) / 5) for k, (lo, hi) in lo_hi.items()}] * 2
        arm_lim = {k: LIMITS[k] for k in ('sho_flex', 'sho_abd', 'elbow', 'arm_twist')}
        arms = [{k: ((lo + hi) / 2, (hi - lo) / 4) for k, (lo, hi) in arm_lim.items()}] * 2
        body.update(torso_pitch=(15, 20), torso_twist=(0, 20), torso_roll=(0, 10))
    out = {k: v for k, v in _side(rng, body).items()}
    for prefix, leg, arm in (('l_', legs[s], arms[s]), ('r_', legs[1 - s], arms[1 - s])):
        out.update({prefix + k: v for k, v in _side(rng, leg).items()})
        out.update({prefix + k: v for k, v in _side(rng, arm).items()})
    for k, v in out.items():
        lo, hi = LIMITS[k[2:] if k[:2] in ('l_', 'r_') else k]
        out[k] = float(np.clip(v, lo, hi))
    return out


DOWN = np.array([0.0, -1.0, 0.0])


def forward_kinematics(p: dict, a: dict) -> np.ndarray:
    """(27, 3) superset joints in the body frame from proportions `p` and angles `a` (degrees)."""
    r = {k: np.deg2rad(v) for k, v in a.items()}
    X = np.zeros((NUM_JOINTS, 3))
    torso = rot_y(r['torso_twist']) @ rot_x(r['torso_pitch']) @ rot_z(r['torso_roll'])
    hips = rot_y(0.3 * r['torso_twist'])
    X[J['pelvis']] = 0.0
    X[J['thorax']] = torso @ [0, p['torso'], 0]
    X[J['upper_neck']] = X[J['thorax']] + torso @ [0, p['neck'], 0]
    head = torso @ rot_y(r['head_yaw']) @ rot_x(-r['head_pitch'])
    hc = X[J['upper_neck']] + head @ [0, 1.05 * p['head'], 0.1 * p['head']]
    h = p['head']
    face = dict(head_top=(0, 1.0, -0.05), nose=(0, -0.15, 1.0), left_eye=(0.33, 0.15, 0.88),
                right_eye=(-0.33, 0.15, 0.88), left_ear=(0.95, 0.0, -0.1), right_ear=(-0.95, 0.0, -0.1))
    for name, off in face.items():
        X[J[name]] = hc + head @ (h * np.asarray(off))
    for side, sgn in (('left', 1.0), ('right', -1.0)):
        k = side[0] + '_'
        sho = X[J['thorax']] + torso @ [sgn * p['shoulder'] / 2, -0.02, -0.01]
        upper = (torso @ rot_z(sgn * r[k + 'sho_abd']) @ rot_x(-r[k + 'sho_flex'])
                 @ rot_y(sgn * r[k + 'arm_twist']))
        elbow = sho + upper @ (p['upper_arm'] * DOWN)
        wrist = elbow + upper @ rot_x(-r[k + 'elbow']) @ (p['forearm'] * DOWN)
        X[J[side + '_shoulder']], X[J[side + '_elbow']], X[J[side + '_wrist']] = sho, elbow, wrist
        hip = hips @ [sgn * p['hip'] / 2, 0, 0]
        thigh = hips @ rot_z(sgn * r[k + 'hip_abd']) @ rot_x(-r[k + 'hip_flex'])
        knee = hip + thigh @ (p['thigh'] * DOWN)
        shin = thigh @ rot_x(r[k + 'knee'])
        ankle = knee + shin @ (p['shin'] * DOWN)
        foot = shin @ rot_x(-r[k + 'ankle']) @ rot_y(sgn * 0.25)
        f, ah = p['foot'], p['ankle_h']
        X[J[side + '_hip']], X[J[side + '_knee']], X[J[side + '_ankle']] = hip, knee, ankle
        X[J[side + '_big_toe']] = ankle + foot @ [-sgn * 0.02, -ah, 0.8 * f]
        X[J[side + '_small_toe']] = ankle + foot @ [sgn * 0.035, -ah, 0.62 * f]
        X[J[side + '_heel']] = ankle + foot @ [0, -ah, -0.22 * f]
    X[J['pelvis']] = (X[J['left_hip']] + X[J['right_hip']]) / 2 + [0, 0.02, 0]
    return X - X[[J['left_ankle'], J['right_ankle']]].min(0) * [0, 1, 0]   # feet at y ~ 0


def head_center(X: np.ndarray) -> np.ndarray:
    """Centre of the head sphere (between the ears)."""
    return (X[J['left_ear']] + X[J['right_ear']]) / 2
