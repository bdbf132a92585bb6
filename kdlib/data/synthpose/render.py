"""SynthPose rendering: background, painter's-algorithm drawing, visibility and per-person labels.

Every part is drawn twice in depth order (far to near): in colour into the image and with its
part id into an id map. A joint is then
  2 (visible)            when the id map at the joint shows background or a part carrying it,
  1 (occluded, labelled) when it shows another part (own body, another person, an object), or
                         for a face point on a head turned partly away,
  0 (unlabelled)         outside the image, eyes/nose of a head turned away from the camera, or
                         every joint of a person too small or too hidden to be annotated (COCO
                         leaves such people without keypoints).
"""
from __future__ import annotations

import cv2
import numpy as np

from kdlib.data.synthpose.body import J, NUM_JOINTS
from kdlib.data.synthpose.scene import layout_people, occluder_parts, person_parts

AA = cv2.LINE_AA
MIN_LABELLED_AREA = 24 * 24 * 0.5     # smaller people get no keypoints (like COCO's small persons)
FACE = [J[n] for n in ('nose', 'left_eye', 'right_eye')]
EARS = [J['left_ear'], J['right_ear']]


class NoiseBank:
    """Pre-computed texture noise; `sample` returns a random crop (cheap per image)."""

    def __init__(self, height: int, width: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        fine = rng.normal(0, 7, (2 * height, 2 * width, 3))
        coarse = cv2.GaussianBlur(rng.normal(0, 40, (2 * height, 2 * width, 3)), (0, 0), 6)
        self.noise = (fine + coarse).astype(np.int16)
        self.h, self.w = height, width

    def sample(self, rng) -> np.ndarray:
        y, x = rng.integers(self.h), rng.integers(self.w)
        return self.noise[y:y + self.h, x:x + self.w]


def _ipt(p) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def background(rng, domain, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: a gradient plus random clutter (or a wall/floor indoor scene)."""
    c0, c1 = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    t = np.linspace(0, 1, height)[:, None, None]
    img = cv2.resize((c0 * (1 - t) + c1 * t).astype(np.uint8), (width, height),
                     interpolation=cv2.INTER_NEAREST)                     # (H, W, 3) gradient
    if domain.background == 'indoor':
        horizon = int(rng.uniform(0.45, 0.8) * height)
        img[horizon:] = rng.uniform(40, 200, 3).astype(np.uint8)
        step = int(rng.uniform(0.06, 0.2) * width)
        line = tuple(rng.uniform(0, 255, 3).tolist())
        for x in range(-width, 2 * width, step):                 # floor tiles in perspective
            cv2.line(img, (width // 2 + (x - width // 2) // 3, horizon), (x, height), line, 1, AA)
        for y in range(horizon, height, max(4, step // 2)):
            cv2.line(img, (0, y), (width, y), line, 1, AA)
        if rng.random() < 0.6:                                   # wallpaper stripes
            stripe = tuple(rng.uniform(0, 255, 3).tolist())
            for x in range(int(rng.integers(step)), width, step):
                cv2.rectangle(img, (x, 0), (x + step // 3, horizon), stripe, -1)
    for _ in range(int(rng.integers(*domain.num_shapes))):
        _clutter_shape(rng, img)
    return img


def _clutter_shape(rng, img) -> None:
    h, w = img.shape[:2]
    colour = tuple(rng.uniform(0, 255, 3).tolist())
    p = (rng.uniform(-0.1, 1.1, 2) * (w, h)).astype(int)
    size = int(rng.uniform(0.03, 0.3) * min(h, w))
    kind = rng.integers(5)
    if kind == 0:
        cv2.rectangle(img, tuple(p), tuple(p + rng.integers(-size, size + 1, 2)), colour, -1)
    elif kind == 1:
        cv2.circle(img, tuple(p), size // 2 + 1, colour, -1, AA)
    elif kind == 2:   # limb-like distractor stick: makes the task harder than colour blobs
        q = p + (rng.normal(0, 1, 2) * size).astype(int)
        cv2.line(img, tuple(p), tuple(q), colour, int(rng.integers(2, max(3, size // 4))), AA)
    elif kind == 3:
        pts = (p + rng.normal(0, size / 2, (int(rng.integers(3, 7)), 2))).astype(np.int32)
        cv2.fillPoly(img, [pts], colour, AA)
    else:
        cv2.ellipse(img, tuple(p), (size, max(1, size // 3)), float(rng.uniform(0, 180)), 0, 360,
                    colour, -1, AA)


def draw_part(img, ids, part: dict, pid: int, shade: float) -> None:
    """Draw one part in colour into `img` and with value `pid` into `ids`."""
    col = tuple(min(255.0, float(v) * shade) for v in part['colour'])
    kind, pts, r = part['kind'], part['pts'], part['radius']
    for target, colour, line in ((img, col, AA), (ids, pid, cv2.LINE_8)):
        if kind == 'capsule':
            thick = max(1, int(round(2 * r)))
            cv2.line(target, _ipt(pts[0]), _ipt(pts[-1]), colour, thick, line)
        elif kind in ('poly', 'head'):
            if kind == 'poly':
                poly = np.round(pts).astype(np.int32)
                cv2.fillConvexPoly(target, cv2.convexHull(poly), colour, line)
                cv2.polylines(target, [poly], True, colour, max(1, int(2 * r * 0.6)), line)
                cv2.line(target, _ipt(part['spine'][0]), _ipt(part['spine'][1]), colour,
                         max(1, int(2 * r)), line)
            else:
                cv2.ellipse(target, _ipt(pts[0]), (max(1, int(r * 0.9)), max(1, int(r * 1.1))),
                            0, 0, 360, colour, -1, line)
        elif kind == 'ellipse':
            cv2.ellipse(target, _ipt(pts[0]), _ipt(pts[1]), 0, 0, 360, colour, -1, line)
        elif kind == 'rect':
            cv2.rectangle(target, _ipt(pts[0]), _ipt(pts[1]), colour, -1, line)
    if kind == 'capsule' and r >= 3:            # a highlight stripe: texture along the limb
        light = tuple(min(255.0, float(v) * shade * 1.25 + 20) for v in part['colour'])
        off = np.array([-0.35 * r, -0.35 * r])
        cv2.line(img, _ipt(pts[0] + off), _ipt(pts[-1] + off), light, max(1, int(r * 0.5)), AA)
    if kind == 'head':
        _draw_face(img, part, shade)
    if kind == 'poly' and part.get('facing', -1.0) > 0.0:
        _draw_shirt_front(img, part, shade)


def _draw_shirt_front(img, part: dict, shade: float) -> None:
    """A V neckline and a button placket, drawn only on a torso that faces the camera.

    With the face, this is what tells a person's front from their back (and so their left from
    their right): without it, a small network trained on uniformly distributed yaw learns only
    the mean pose, because half its left/right labels look mirrored.
    """
    neck, pelvis = part['spine']
    left, right = part['pts'][0], part['pts'][1]                # shoulders (quad order)
    chest = neck + 0.3 * (pelvis - neck)
    v = np.stack([neck + 0.45 * (left - neck), neck + 0.45 * (right - neck), chest])  # (3, 2) the V
    v = np.round(v).astype(np.int32)
    cv2.fillConvexPoly(img, v, tuple(min(255.0, float(x) * shade) for x in part['skin']), AA)
    dark = tuple(float(x) * shade * 0.45 for x in part['colour'])
    cv2.line(img, _ipt(chest), _ipt(chest + 0.85 * (pelvis - chest)), dark,
             max(1, int(round(0.25 * part['radius']))), AA)


def _draw_face(img, part: dict, shade: float) -> None:
    """Hair on the back of the head; eyes and nose only where the face turns to the camera."""
    centre, r, facing = part['pts'][0], part['radius'], part['facing']
    hair = tuple((part['hair'] * shade).tolist())
    if facing < 0.3:                            # seen from behind/side: hair covers the head
        cv2.ellipse(img, _ipt(centre), (max(1, int(r * 0.9)), max(1, int(r * 1.1))), 0, 0, 360,
                    hair, -1, AA)
    else:
        cv2.ellipse(img, _ipt(centre - (0, 0.35 * r)), (max(1, int(r * 0.85)), max(1, int(r * 0.7))),
                    0, 180, 360, hair, -1, AA)
    if facing > 0.0:
        dot = max(1, int(round(r * 0.16)))
        for k in (1, 2):
            cv2.circle(img, _ipt(part['face_uv'][k]), dot, (20, 20, 30), -1, AA)
        cv2.circle(img, _ipt(part['face_uv'][0]), dot, tuple((part['colour'] * 0.6).tolist()), -1, AA)


def render_scene(rng, domain, height: int, width: int, noise: NoiseBank):
    """One image and its people: list of dicts with joints (27, 3) x, y, v, box, area, head_box."""
    img = background(rng, domain, height, width)
    ids = np.zeros((height, width), np.uint8)
    people = layout_people(rng, domain, width, height)
    parts = []
    for i, person in enumerate(people):
        parts += person_parts(person, i)
        if rng.random() < domain.occluder_p:
            parts += occluder_parts(rng, person, width, height)
    order = np.argsort([p['depth'] for p in parts], kind='stable')     # far -> near
    depths = np.array([p['depth'] for p in parts])
    span = max(1e-6, np.ptp(depths))
    for pid, k in enumerate(order, start=1):
        shade = 0.8 + 0.25 * (depths[k] - depths.min()) / span        # nearer = brighter
        draw_part(img, ids, parts[k], pid, shade)
    part_of = np.full(len(parts) + 1, -1)                              # id -> part index
    part_of[1:] = order
    owner = np.array([0] + [parts[k]['person'] + 1 for k in order], np.uint8)[ids]  # (H, W) person + 1
    img = img.astype(np.int16) + noise.sample(rng)                     # texture noise
    np.clip(img, 0, 255, out=img)
    levels = np.arange(256, dtype=np.float64)[:, None]                 # lighting + colour cast
    lut = levels * (np.asarray(domain.colour_cast) * rng.uniform(0.75, 1.2)) + rng.uniform(-20, 20)
    img = cv2.LUT(img.astype(np.uint8), np.clip(lut, 0, 255).astype(np.uint8)[:, None, :])
    return img, [_label_person(i, p, parts, part_of, ids, owner) for i, p in enumerate(people)]


def _label_person(i, person, parts, part_of, ids, owner) -> dict:
    height, width = ids.shape
    uv = person['uv']
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= width - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= height - 1)
    vis = np.zeros(NUM_JOINTS, np.int64)
    px = np.clip(np.round(uv).astype(int), 0, [width - 1, height - 1])
    seen = part_of[ids[px[:, 1], px[:, 0]]]                            # part index or -1 (bg)
    for j in range(NUM_JOINTS):
        k = seen[j]
        own = k < 0 or (parts[k]['person'] == i and j in parts[k]['joints'])
        vis[j] = 2 if own else 1
    facing = person['facing']
    if facing < 0.15:
        vis[FACE] = np.where(facing < -0.25, 0, 1)
    ears_z = person['z'][EARS] - person['head_z']
    vis[EARS] = np.where(ears_z < -0.5 * person['head_r'], np.minimum(vis[EARS], 1), vis[EARS])
    vis[~inside] = 0
    mine = (owner == i + 1).view(np.uint8)
    area = float(cv2.countNonZero(mine))
    box = np.array(cv2.boundingRect(mine), np.float32)                 # x, y, w, h (pixels)
    if area < MIN_LABELLED_AREA:
        vis[:] = 0
    joints = np.zeros((NUM_JOINTS, 3), np.float32)
    joints[:, :2] = np.where(vis[:, None] > 0, uv, 0)
    joints[:, 2] = vis
    hc, hr = person['head_uv'], person['head_r']
    lo, hi = uv.min(0), uv.max(0)
    return dict(joints=joints, box=box, area=area, uv=uv.astype(np.float32),
                head_box=np.array([hc[0] - hr, hc[1] - hr, hc[0] + hr, hc[1] + hr], np.float32),
                extent=np.array([lo[0], min(lo[1], hc[1] - hr), hi[0], hi[1]], np.float32),
                pose_type=person['pose_type'], facing=facing)
