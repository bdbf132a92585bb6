"""Image-Guided Progressive GCN (IGP-GCN): the stage-2 pose refiner of TwoStage-GCN.

Ji et al., "A Coarse-to-Fine Human Pose Estimation Method based on Two-stage Distillation and
Progressive Graph Neural Network", Sec. III-B; the module itself is OPEC-Net's (Qiu et al.,
ECCV 2020, "Peeking into occluded joints", ref. [20] of the paper).

The refiner sees the frozen stage-1 student's pose P_init (x, y, confidence per joint) as a graph
over the K joints of the dataset's skeleton (adjacency from `Skeleton.limbs`, Sec. III-B-1).
A first graph convolution lifts P_init to node features; a first residual GCN attention block
mixes them along the skeleton; then blocks 2-4 each concatenate node features J_i sampled
bilinearly (`grid_sample`) from the student's feature maps F_1..F_3 -- low, middle, high
resolution, coarse to fine -- and output a refined pose P_i (i = 1, 2, 3). Inference uses P_3.

Details the paper leaves out, taken from OPEC-Net's code (lingtengqiu/OPEC-Net,
engineer/models/backbones/SemGCN_Attention + common/semgcn_helper.py), re-written here:
  * graph convolution = SemGCN's (Zhao et al., CVPR 2019): separate weights for a node and its
    neighbours, learnable edge weights softmax-normalised over each node's neighbourhood (self
    loop included);
  * resGCN attention block = gconv(BN, ReLU) -> gconv -> BN(residual + .) -> ReLU -> node
    attention (a squeeze-excitation over the K nodes, x + x * sigmoid(.));
  * an extra first block without image features before the three image-guided ones (the paper's
    "second-to-fourth resGCN attention blocks"); F_1..F_3 = the 1/16, 1/8, 1/4 maps;
  * coordinates live in grid_sample's normalised [-1, 1] frame (align_corners=False);
  * node input = (x, y, confidence), width 128 (OPEC-Net's CrowdPose config: coords_dim=(3, 2),
    hid_dim=[128] * 5).
Choices of the kit (parameters):
  * `predict='offset'` (default): block i outputs a correction, P_i = P_{i-1} + dP_i, with a
    zero-initialised output layer, so an untrained refiner returns P_init exactly and a short
    schedule cannot push the student below its stage-1 accuracy. `predict='absolute'` regresses
    P_i directly, as OPEC-Net does.
  * `sample_at='current'` (default) samples J_i at the pose refined so far (P_{i-1}; "features
    located in each joint coordination of human pose P_i", Sec. III-B-2); `'initial'` samples
    all three at P_init, as OPEC-Net's code does. Sampling positions carry no gradient.
  * the block width stays `hidden`: image features are concatenated for the first gconv only and
    the residual runs on the pose stream (OPEC-Net lets the width grow by each concatenation).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


def skeleton_adjacency(limbs: Sequence[tuple[int, int]], num_joints: int) -> torch.Tensor:
    """(K, K) symmetric 0/1 adjacency a_ij = 1 for limbs (Sec. III-B-1), with self loops."""
    adj = torch.eye(num_joints)
    for i, j in limbs:
        if not (0 <= i < num_joints and 0 <= j < num_joints):
            raise ValueError(f'limb ({i}, {j}) is outside 0..{num_joints - 1}; '
                             'pass the limbs of the skeleton the model predicts')
        adj[i, j] = adj[j, i] = 1.0
    return adj


class SemGraphConv(nn.Module):
    """SemGCN graph convolution: y_i = sum_j softmax_j(e_ij) (W_self if i == j else W_nb) x_j."""

    def __init__(self, in_dim: int, out_dim: int, adj: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(2, in_dim, out_dim))
        nn.init.xavier_uniform_(self.weight, gain=1.414)
        self.register_buffer('mask', adj > 0, persistent=False)                 # (K, K)
        self.edge = nn.Parameter(torch.ones(int(self.mask.sum())))              # learnable e_ij
        self.bias = nn.Parameter(torch.empty(out_dim).uniform_(-1, 1) / math.sqrt(out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:                          # (B, K, C_in)
        logits = torch.full(self.mask.shape, float('-inf'), device=x.device, dtype=x.dtype)
        logits = logits.masked_scatter(self.mask, self.edge.to(x.dtype))
        a = logits.softmax(dim=1)                                                # (K, K)
        eye = torch.eye(a.shape[0], device=x.device, dtype=x.dtype)
        h_self, h_nb = x @ self.weight[0], x @ self.weight[1]                    # (B, K, C_out)
        return (a * eye) @ h_self + (a * (1 - eye)) @ h_nb + self.bias


class GraphConvBlock(nn.Module):
    """SemGraphConv -> BatchNorm over channels -> ReLU."""

    def __init__(self, in_dim: int, out_dim: int, adj: torch.Tensor):
        super().__init__()
        self.gconv = SemGraphConv(in_dim, out_dim, adj)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:                          # (B, K, C)
        return F.relu(self.bn(self.gconv(x).transpose(1, 2)).transpose(1, 2))


class NodeAttention(nn.Module):
    """Squeeze-excitation over the K nodes (OPEC-Net's Node_Attention): x + x * s, s in (0, 1)^K."""

    def __init__(self, channels: int, num_joints: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, max(channels // 4, 1)), nn.ReLU(),
                                nn.Linear(max(channels // 4, 1), num_joints), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:                          # (B, K, C)
        s = self.fc(x.mean(dim=1))                                               # (B, K)
        return x + x * s[:, :, None]


class ResGCNAttentionBlock(nn.Module):
    """Residual GCN attention block; `image_dim` > 0 concatenates sampled node features J_i."""

    def __init__(self, hidden: int, adj: torch.Tensor, image_dim: int = 0):
        super().__init__()
        self.gconv1 = GraphConvBlock(hidden + image_dim, hidden, adj)
        self.gconv2 = SemGraphConv(hidden, hidden, adj)
        self.bn = nn.BatchNorm1d(hidden)
        self.attention = NodeAttention(hidden, adj.shape[0])

    def forward(self, x: torch.Tensor, joint_features: torch.Tensor | None = None):
        h = x if joint_features is None else torch.cat([x, joint_features], dim=2)  # (B, K, H+C)
        h = self.gconv2(self.gconv1(h))                                          # (B, K, H)
        h = F.relu(self.bn((x + h).transpose(1, 2)).transpose(1, 2))
        return self.attention(h)


def sample_joint_features(feature: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear node features J at normalised joint positions: (B, C, h, w), (B, K, 2) -> (B, K, C)."""
    grid = coords.detach()[:, None].to(feature.dtype)                            # (B, 1, K, 2)
    out = F.grid_sample(feature, grid, mode='bilinear', align_corners=False)      # (B, C, 1, K)
    return out[:, :, 0].transpose(1, 2)


class IGPGCN(nn.Module):
    """The graph network: P_init (B, K, 3) + F_1..F_3 (coarse -> fine) -> [P_1, P_2, P_3] (B, K, 2).

    Coordinates are normalised to [-1, 1] (grid_sample convention, align_corners=False).
    """

    def __init__(self, adj: torch.Tensor, feature_channels: Sequence[int], hidden: int = 128,
                 in_dim: int = 3, predict: str = 'offset', sample_at: str = 'current'):
        super().__init__()
        if predict not in ('offset', 'absolute') or sample_at not in ('current', 'initial'):
            raise ValueError(f"predict must be 'offset'|'absolute' (got {predict!r}), "
                             f"sample_at 'current'|'initial' (got {sample_at!r})")
        self.predict, self.sample_at = predict, sample_at
        self.register_buffer('adj', adj.float(), persistent=False)
        self.input = GraphConvBlock(in_dim, hidden, adj)                         # first graph conv
        self.context = ResGCNAttentionBlock(hidden, adj)                         # first resGCN block
        self.blocks = nn.ModuleList(ResGCNAttentionBlock(hidden, adj, c) for c in feature_channels)
        self.heads = nn.ModuleList(SemGraphConv(hidden, 2, adj) for _ in feature_channels)
        if predict == 'offset':
            for head in self.heads:                     # start as the identity: P_i = P_init
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    def forward(self, pose: torch.Tensor, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(features) != len(self.blocks):
            raise ValueError(f'IGPGCN expects {len(self.blocks)} feature maps, got {len(features)}')
        x = self.context(self.input(pose))                                       # (B, K, H)
        current, refined = pose[..., :2], []                                     # (B, K, 2)
        for block, head, feature in zip(self.blocks, self.heads, features):
            at = current if self.sample_at == 'current' else pose[..., :2]
            x = block(x, sample_joint_features(feature, at))                     # J_i, (B, K, H)
            delta = head(x)                                                      # (B, K, 2)
            current = current + delta if self.predict == 'offset' else delta     # P_i
            refined.append(current)
        return refined


def simcc_argmax(simcc_x: torch.Tensor, simcc_y: torch.Tensor, split_ratio: float):
    """SimCC's test-time decoding, exactly as `kdlib.decode` does it for a bare SimCC model (argmax
    bin / k, score from the softmax maxima). (B, K, W*k), (B, K, H*k) -> (B, K, 2), (B, K)."""
    from kdlib.decode import decode_simcc
    return decode_simcc(simcc_x.float().softmax(-1), simcc_y.float().softmax(-1), split_ratio)


def to_normalised(coords: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    """Input-crop pixels (x, y) -> grid_sample's [-1, 1] frame (align_corners=False)."""
    h, w = input_size
    size = coords.new_tensor([w, h])
    return (coords + 0.5) / size * 2 - 1


def to_pixels(coords: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    h, w = input_size
    size = coords.new_tensor([w, h])
    return (coords + 1) / 2 * size - 0.5


class IGPRefiner(nn.Module):
    """A frozen SimCC pose network + the IGP-GCN that refines its pose (the stage-2 model).

    `forward(images)` returns the base model's dict plus
      init_coords (B, K, 2), init_scores (B, K): the frozen student's pose P_init (input pixels)
      refined: [P_1, P_2, P_3], each (B, K, 2) in input pixels
      coords = P_3, scores = init_scores: what `kdlib.decode.predict` evaluates (CONTRACTS.md).
    The base model never trains: its parameters have requires_grad=False and `train()` keeps it
    in eval mode (BatchNorm statistics frozen too).
    """

    def __init__(self, base: nn.Module, limbs, num_joints: int, input_size: tuple[int, int],
                 feature_levels: Sequence[int] = (2, 1, 0),
                 hidden: int = 128, predict: str = 'offset', sample_at: str = 'current'):
        super().__init__()
        self.base, self.input_size = base, tuple(input_size)
        self.feature_levels = tuple(feature_levels)
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.base.eval()
        channels = self._feature_channels()
        self.gcn = IGPGCN(skeleton_adjacency(limbs, num_joints), channels, hidden=hidden,
                          predict=predict, sample_at=sample_at)

    def _feature_channels(self) -> list[int]:
        device = next(self.base.parameters()).device
        with torch.no_grad():
            out = self.base(torch.zeros(1, 3, *self.input_size, device=device))
        if 'simcc_x' not in out or 'multiscale' not in out:
            raise ValueError('IGPRefiner needs a base model with a SimCC head and a `multiscale` '
                             f'feature list (HRNet family); its outputs are {sorted(out)}')
        levels = out['multiscale']
        if max(self.feature_levels) >= len(levels):
            raise ValueError(f'feature_levels {self.feature_levels} index past the '
                             f'{len(levels)} multiscale maps of the base model')
        return [levels[i].shape[1] for i in self.feature_levels]

    def train(self, mode: bool = True):
        super().train(mode)
        self.base.eval()                                   # the stage-1 student stays frozen
        return self

    def last_layer_parameters(self) -> list[nn.Parameter]:
        """The layers that output the refined poses: the GCN's progressive coordinate heads
        (``kdlib.balance`` measures each loss term's gradient there)."""
        return [p for p in self.gcn.heads.parameters() if p.requires_grad]

    def forward(self, images: torch.Tensor) -> dict:
        with torch.no_grad():
            out = self.base(images)
            k = out['simcc_x'].shape[-1] / images.shape[-1]                       # SimCC split ratio
            init, scores = simcc_argmax(out['simcc_x'], out['simcc_y'], k)
        pose = torch.cat([to_normalised(init, self.input_size), scores[..., None]], -1)  # (B, K, 3)
        features = [out['multiscale'][i] for i in self.feature_levels]          # coarse -> fine
        refined = [to_pixels(p, self.input_size) for p in self.gcn(pose, features)]
        return {**out, 'init_coords': init, 'init_scores': scores, 'refined': refined,
                'coords': refined[-1], 'scores': scores}


REFINER_PARAMS = ('hidden', 'predict', 'sample_at', 'feature_levels')
HIDDEN_BY_VARIANT = {'paper': 128, 'classroom': 64, 'smoke': 16}   # OPEC-Net's 128; scaled with the zoo's variants


def build_refiner_student(cfg, profile: dict, num_joints: int, input_size, init_checkpoint: str | None):
    """`kdlib.experiment.STUDENT_BUILDERS['igp_gcn']`: the stage-1 student (`cfg.model`, SimCC,
    weights from `init_checkpoint` = the `init_from` run) frozen inside an `IGPRefiner`.

    `cfg.model_params` may hold the refiner's keys (REFINER_PARAMS); the rest go to build_model.
    The graph is the skeleton named like `cfg.dataset` (kdlib.skeletons.SKELETONS).
    """
    from kdlib.models import build_model
    from kdlib.skeletons import SKELETONS
    from kdlib.train.checkpoint import load_model_weights
    if cfg.head != 'simcc':
        raise ValueError(f"the IGP-GCN refines a SimCC student: set head='simcc' (got {cfg.head!r})")
    if cfg.dataset not in SKELETONS:
        raise KeyError(f'no skeleton named {cfg.dataset!r} for the GCN graph; known: {sorted(SKELETONS)}')
    params = dict(cfg.model_params)
    refiner = {k: params.pop(k) for k in REFINER_PARAMS if k in params}
    refiner.setdefault('hidden', HIDDEN_BY_VARIANT.get(profile['model_variant'], 128))
    base = build_model(cfg.model, num_joints, head='simcc', input_size=tuple(input_size),
                       variant=profile['model_variant'], **params)
    if init_checkpoint is not None:
        load_model_weights(base, init_checkpoint)
    skeleton = SKELETONS[cfg.dataset]
    if skeleton.num_joints != num_joints:
        raise ValueError(f'skeleton {cfg.dataset!r} has {skeleton.num_joints} joints, the data {num_joints}')
    return IGPRefiner(base, skeleton.limbs, num_joints, tuple(input_size), **refiner)
