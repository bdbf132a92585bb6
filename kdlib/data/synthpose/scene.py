"""SynthPose scene layout: people posed in 3D, projected to the image, cut into depth-sorted parts.

A part is a dict: kind ('capsule' | 'poly' | 'head' | 'ellipse' | 'rect'), pts (n, 2) pixels,
radius (pixels), depth (larger = nearer the camera), colour (BGR), person (index or -1 for an
external occluder) and joints (superset indices the part carries, used by the visibility test).
"""
from __future__ import annotations

import colorsys

import numpy as np

from kdlib.data.synthpose.body import (J, forward_kinematics, head_center, rot_x, rot_y,
                                       sample_pose, sample_proportions)

PERSPECTIVE = 0.12   # weak perspective: magnification 1 / (1 - PERSPECTIVE * z) for z in heights

LIMB_PARTS = (  # (name, joint a, joint b, radius key, clothing key)
    ('upper_arm', 'shoulder', 'elbow', 'upper_arm', 'top'),
    ('forearm', 'elbow', 'wrist', 'forearm', 'sleeve'),
    ('thigh', 'hip', 'knee', 'thigh', 'bottom'),
    ('shin', 'knee', 'ankle', 'shin', 'leg'))


def _colour(rng, sat_range, value=(0.25, 0.95)) -> np.ndarray:
    h, s, v = rng.random(), rng.uniform(*sat_range), rng.uniform(*value)
    return np.array(colorsys.hsv_to_rgb(h, s, v)[::-1]) * 255   # BGR


def sample_outfit(rng, domain) -> dict:
    skin = np.array(colorsys.hsv_to_rgb(rng.uniform(0.02, 0.1), rng.uniform(0.25, 0.6),
                                        rng.uniform(0.3, 0.95))[::-1]) * 255
    top, bottom = _colour(rng, domain.saturation), _colour(rng, domain.saturation)
    return dict(skin=skin, top=top, bottom=bottom, shoes=_colour(rng, (0, 0.4), (0.05, 0.5)),
                sleeve=top if rng.random() < 0.5 else skin,
                leg=bottom if rng.random() < 0.75 else skin,
                hair=_colour(rng, (0.2, 0.7), (0.05, 0.45)))


def _sample_yaw(rng, domain) -> float:
    if domain.yaw_std is None or rng.random() < domain.yaw_uniform_p:
        return rng.uniform(-np.pi, np.pi)
    return np.deg2rad(rng.normal(0.0, domain.yaw_std))


def sample_person(rng, domain, height_px: float, center, depth: float) -> dict:
    """One posed person projected to pixels: joints (27, 2), z (27,) depth, plus appearance."""
    names = list(domain.pose_weights)
    weights = np.array([domain.pose_weights[n] for n in names])
    pose_type = names[rng.choice(len(names), p=weights / weights.sum())]
    prop = sample_proportions(rng, domain.proportion_spread, domain.build)
    X = forward_kinematics(prop, sample_pose(rng, pose_type))          # (27, 3)
    X = np.vstack([X, head_center(X)])                                  # (28, 3) + head centre
    X[:, 1] -= X[:, 1].max() / 2                                        # centre vertically
    R = rot_x(np.deg2rad(rng.normal(0, domain.camera_pitch_std))) @ rot_y(_sample_yaw(rng, domain))
    Xc = X @ R.T                                                        # camera frame, z to camera
    mag = 1.0 / (1.0 - PERSPECTIVE * Xc[:, 2])
    uv = np.stack([Xc[:, 0], -Xc[:, 1]], 1) * (height_px * mag)[:, None] + np.asarray(center)
    face_dir = R @ (X[J['nose']] - X[-1])
    return dict(uv=uv[:-1], z=depth + height_px * Xc[:-1, 2], head_uv=uv[-1],
                head_z=depth + height_px * Xc[-1, 2], head_r=prop['head'] * height_px * mag[-1],
                facing=float(face_dir[2] / (np.linalg.norm(face_dir) + 1e-9)),
                radii={k: v * height_px for k, v in prop['radii'].items()}, height_px=height_px,
                outfit=sample_outfit(rng, domain), pose_type=pose_type, depth=depth)


def person_parts(person: dict, index: int) -> list[dict]:
    """Depth-sortable parts of one person (torso, neck, head, limbs, hands, feet)."""
    uv, z, r, c = person['uv'], person['z'], person['radii'], person['outfit']
    P = lambda n: uv[J[n]]                                    # noqa: E731
    parts = []

    def add(kind, names, radius, colour, carried, pts=None, depth=None):
        idx = [J[n] for n in names]
        parts.append(dict(kind=kind, pts=uv[idx] if pts is None else pts, radius=radius,
                          depth=z[idx].mean() if depth is None else depth, colour=colour,
                          person=index, joints=[J[n] for n in carried]))

    quad = ('left_shoulder', 'right_shoulder', 'right_hip', 'left_hip')
    mid = np.stack([(P('left_shoulder') + P('right_shoulder')) / 2, (P('left_hip') + P('right_hip')) / 2])
    torso_r = 0.8 * r['thigh'] + 0.5 * r['torso']
    add('poly', quad, torso_r, c['top'], quad + ('thorax', 'pelvis'))
    parts[-1]['spine'], parts[-1]['depth'] = mid, z[[J[n] for n in quad]].mean() - 0.5 * torso_r
    parts[-1].update(facing=person['facing'], skin=c['skin'])  # the shirt's front shows a neckline
    add('capsule', ('thorax', 'upper_neck'), r['neck'], c['skin'], ('thorax', 'upper_neck'))
    face = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'head_top', 'upper_neck')
    add('head', ('head_top',), person['head_r'], c['skin'], face,
        pts=person['head_uv'][None], depth=person['head_z'])
    parts[-1].update(hair=c['hair'], facing=person['facing'], face_uv=uv[[J[n] for n in face[:5]]])
    for side in ('left', 'right'):
        for _, a, b, rk, ck in LIMB_PARTS:
            add('capsule', (f'{side}_{a}', f'{side}_{b}'), r[rk], c[ck], (f'{side}_{a}', f'{side}_{b}'))
        w, e = P(f'{side}_wrist'), P(f'{side}_elbow')
        hand = w + (w - e) * (r['hand'] / (np.linalg.norm(w - e) + 1e-6))
        add('capsule', (f'{side}_wrist',), r['hand'], c['skin'], (f'{side}_wrist',),
            pts=np.stack([w, hand]))
        toe = (P(f'{side}_big_toe') + P(f'{side}_small_toe')) / 2
        add('capsule', (f'{side}_heel', f'{side}_big_toe', f'{side}_small_toe'), r['foot'],
            c['shoes'], (f'{side}_ankle', f'{side}_heel', f'{side}_big_toe', f'{side}_small_toe'),
            pts=np.stack([P(f'{side}_heel'), toe]))
    return parts


def occluder_parts(rng, person: dict, width: int, height: int) -> list[dict]:
    """An external object in front of `person`: a box over the legs, a pole, or a ball/bush."""
    uv, hp = person['uv'], person['height_px']
    kind = rng.choice(['rect', 'rect', 'pole', 'ellipse'])
    colour = rng.uniform(20, 235, 3)
    depth = person['depth'] + hp * rng.uniform(0.3, 0.8)
    if kind == 'rect':                    # table / sign / car covering the lower or side body
        cx = uv[:, 0].mean() + rng.normal(0, 0.25) * hp
        top = uv[:, 1].min() + rng.uniform(0.35, 0.8) * hp
        w = rng.uniform(0.3, 0.9) * hp
        pts = np.array([[cx - w / 2, top], [cx + w / 2, top + rng.uniform(0.2, 0.7) * hp]])
        return [dict(kind='rect', pts=pts, radius=0, depth=depth, colour=colour, person=-1, joints=[])]
    if kind == 'pole':
        x = uv[rng.integers(len(uv)), 0] + rng.normal(0, 0.05) * hp
        pts = np.array([[x, -10.0], [x + rng.normal(0, 0.1) * hp, height + 10.0]])
        return [dict(kind='capsule', pts=pts, radius=rng.uniform(0.03, 0.08) * hp, depth=depth,
                     colour=colour, person=-1, joints=[])]
    centre = uv[rng.integers(len(uv))] + rng.normal(0, 0.08, 2) * hp
    axes = rng.uniform(0.08, 0.25, 2) * hp
    return [dict(kind='ellipse', pts=np.stack([centre, axes]), radius=0, depth=depth,
                 colour=colour, person=-1, joints=[])]


def layout_people(rng, domain, width: int, height: int) -> list[dict]:
    """Sample people (count, size, position, depth) for one image."""
    n = int(rng.choice(domain.num_people, p=domain.num_people_p))
    people = []
    cluster_x = rng.uniform(0.35, 0.65) * width
    for i in range(n):
        frac = rng.uniform(*domain.height_range)
        if i > 0 and rng.random() < domain.small_person_p:
            frac *= rng.uniform(0.2, 0.45)                     # a far, small person
        hp = frac * height
        if domain.cluster > 0:
            cx = cluster_x + rng.uniform(-0.5, 0.5) * domain.cluster * width
        else:
            cx = rng.uniform(0.15, 0.85) * width
        cy = rng.uniform(0.5 * hp, max(0.5 * hp, height - 0.5 * hp)) if hp < height else height / 2
        if rng.random() < domain.truncation_p:                 # push over a border
            side = rng.integers(3)
            if side == 0:
                cy = height - rng.uniform(-0.1, 0.3) * hp       # legs cut by the bottom border
            else:
                out = rng.uniform(-0.25, 0.1) * hp              # centre this far outside
                cx = width + out if side == 1 else -out
        people.append(sample_person(rng, domain, hp, (cx, cy), depth=hp + rng.normal(0, 0.05 * height)))
    return people
