"""SynthPose appearance/pose domains.

Two "datasets" must differ like COCO and MPII do, so that training on one and testing on the
other (the unified-skeleton paper's cross-dataset question) is a real generalisation problem:

* `coco`:  street-like clutter (many random shapes), mostly camera-facing yaw (N(0, 45 deg), a
           tenth of people at any yaw, as in photos where most people face the camera), 1-4
           people of varied size,
           everyday poses (standing/walking dominate), cool colour cast, frequent occluders and
           truncation.
* `mpii`:  indoor activity scenes (wall/floor, tiles, stripes), mostly frontal-to-side yaw, 1-2
           large centred people, activity poses (squats, arms raised, bending, kicks) dominate,
           warm colour cast and muted clothing, heavier builds.
* `crowd`: the coco appearance with 3-7 people clustered so that they overlap (CrowdPose-style).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Domain:
    name: str
    num_people: tuple[int, ...]                 # choices
    num_people_p: tuple[float, ...]             # their probabilities
    height_range: tuple[float, float]           # person height / image height
    pose_weights: dict = field(default_factory=dict)
    yaw_std: float | None = None                # None: uniform over 360 degrees
    yaw_uniform_p: float = 0.0                  # chance of a uniform yaw when yaw_std is set
    background: str = 'clutter'                 # 'clutter' | 'indoor'
    num_shapes: tuple[int, int] = (8, 20)
    occluder_p: float = 0.5                     # chance per person of a nearby occluder
    truncation_p: float = 0.25                  # chance per person of being pushed over a border
    cluster: float = 0.0                        # >0: people placed within this fraction of width
    colour_cast: tuple[float, float, float] = (1.0, 1.0, 1.0)   # BGR gains
    saturation: tuple[float, float] = (0.3, 1.0)
    build: float = 1.0
    proportion_spread: float = 0.08
    camera_pitch_std: float = 8.0
    small_person_p: float = 0.15                # chance of a far (small) extra person


DOMAINS = {
    'coco': Domain(
        'coco', num_people=(1, 2, 3, 4), num_people_p=(0.4, 0.3, 0.2, 0.1),
        height_range=(0.35, 0.95),
        pose_weights=dict(stand=0.3, walk=0.25, arms_up=0.1, squat=0.07, bend=0.08, kick=0.05,
                          free=0.15),
        yaw_std=45.0, yaw_uniform_p=0.1, background='clutter', num_shapes=(10, 24), occluder_p=0.45,
        truncation_p=0.25, colour_cast=(1.08, 1.0, 0.94), saturation=(0.25, 1.0)),
    'mpii': Domain(
        'mpii', num_people=(1, 2), num_people_p=(0.65, 0.35), height_range=(0.6, 1.0),
        pose_weights=dict(stand=0.1, walk=0.1, arms_up=0.2, squat=0.17, bend=0.15, kick=0.13,
                          free=0.15),
        yaw_std=55.0, yaw_uniform_p=0.2, background='indoor', num_shapes=(3, 8),
        occluder_p=0.3, truncation_p=0.12, colour_cast=(0.9, 1.0, 1.12), saturation=(0.15, 0.6),
        build=1.15, proportion_spread=0.1, camera_pitch_std=12.0, small_person_p=0.05),
    'crowd': Domain(
        'crowd', num_people=(3, 4, 5, 6, 7), num_people_p=(0.2, 0.25, 0.25, 0.2, 0.1),
        height_range=(0.4, 0.8),
        pose_weights=dict(stand=0.35, walk=0.25, arms_up=0.12, squat=0.05, bend=0.05, kick=0.03,
                          free=0.15),
        yaw_std=45.0, yaw_uniform_p=0.1, background='clutter', num_shapes=(10, 24), occluder_p=0.25,
        truncation_p=0.2, cluster=0.55, colour_cast=(1.08, 1.0, 0.94), saturation=(0.25, 1.0),
        small_person_p=0.1),
}
