"""One encoder per modality: model-ready inputs (model/inputs.py) -> a (B, feature_dim) feature.

Each encoder's ``forward`` takes the whole batched input dict and reads its own keys, so the
radar encoder finds its point mask. Input sizes come from :func:`~mmhpe_ros.model.inputs.input_shapes`
(never hard-coded), so the encoders follow changes of the preprocessing. No batch normalisation
anywhere: absent modalities arrive as zeros and must not shift statistics shared across the
batch (the paper's encoders use BatchNorm; LayerNorm / GroupNorm stand in for it here).

Two families (``ModelConfig.rgb_encoder`` / ``lidar_encoder`` / ``mmwave_encoder`` / ``wifi_encoder``):

- light, the real-time default: :class:`KeypointEncoder` (MLP on one frame), :class:`PointEncoder`
  (PointNet), :class:`CsiEncoder` (small CNN);
- the paper's choices (Qi et al., "Towards Balanced Multi-Modal Learning in 3D Human Pose
  Estimation", implementation details: VideoPose3D for RGB keypoint sequences, Point Transformer
  for LiDAR and mmWave, MetaFi++ for WiFi CSI): :class:`TemporalKeypointEncoder`,
  :class:`PointTransformerEncoder`, :class:`MetaFiEncoder`. The paper (as summarised in
  ../shared/docs/method.md; its full text could not be read here, so no section numbers) names
  these networks but not their sizes; the sizes below are ours and say so.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.csi import drop_csi_packets
from mmhpe_ros.model.inputs import PRESENT, WIFI_MASK, input_shapes

WINDOW_SUFFIX = "_window"  # batch key of a (B, T, ...) window of a per-frame key, built by the dataset
POSITION_DIMS = 3  # x, y, z: the first columns of every point set


def mlp(sizes: list[int], final_activation: bool = False) -> nn.Sequential:
    """Linear layers with LayerNorm + ReLU between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or final_activation:
            layers += [nn.LayerNorm(n_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def modality_keys(modality: str, config: ModelConfig) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The input keys of one modality (``rgb``, ``rgb_score``, ``mmwave_mask`` ...) with shape and dtype."""
    return {k: v for k, v in input_shapes(config).items()
            if k != PRESENT and (k == modality or k.startswith(modality + "_"))}


def float_keys(modality: str, config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The floating-point input keys of a modality and their per-sample shapes."""
    return {k: shape for k, (shape, dtype) in modality_keys(modality, config).items() if dtype.kind == "f"}


def mask_key(modality: str, config: ModelConfig) -> str | None:
    """``<modality>_mask`` if the inputs have that boolean key (real points / packets)."""
    key = f"{modality}_mask"
    entry = modality_keys(modality, config).get(key)
    return key if entry is not None and entry[1].kind == "b" else None


def window_keys(config: ModelConfig) -> tuple[str, ...]:
    """Per-frame keys the dataset stacks into ``<key>_window`` for a temporal model (none otherwise)."""
    return tuple(float_keys("rgb", config)) if config.window > 1 else ()


# -- light encoders ---------------------------------------------------------------------------


class KeypointEncoder(nn.Module):
    """2D keypoints (+ any other float RGB inputs) of one frame -> feature: an MLP on the flattened values."""

    def __init__(self, config: ModelConfig, key: str = "rgb") -> None:
        super().__init__()
        self.keys = tuple(float_keys(key, config))
        width = sum(int(np.prod(s)) for s in float_keys(key, config).values())
        self.net = mlp([width, 256, 256, config.feature_dim])

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        return self.net(torch.cat([inputs[k].flatten(1) for k in self.keys], dim=-1))


class PointEncoder(nn.Module):
    """Point set (B, N, C) [+ mask (B, N)] -> feature: PointNet shared MLP, masked max + mean pool."""

    def __init__(self, config: ModelConfig, key: str) -> None:
        super().__init__()
        self.key, self.mask_key = key, mask_key(key, config)
        channels = input_shapes(config)[key][0][-1]
        self.point_mlp = mlp([channels, 64, 128, 256], final_activation=True)
        self.out = mlp([2 * 256, config.feature_dim])

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        per_point = self.point_mlp(inputs[self.key])  # (B, N, 256)
        mask = inputs[self.mask_key] if self.mask_key is not None else None
        return self.out(masked_pool(per_point, mask))


def masked_pool(per_point: Tensor, mask: Tensor | None) -> Tensor:
    """Max and mean over points (B, N, D) -> (B, 2D), over the real points only when ``mask`` is given.
    Features are >= 0 after ReLU, so 0 is a neutral fill for the max of an empty set."""
    if mask is None:
        return torch.cat([per_point.amax(dim=1), per_point.mean(dim=1)], dim=-1)
    m = mask.unsqueeze(-1)
    pooled_max = per_point.masked_fill(~m, 0.0).amax(dim=1)
    pooled_mean = (per_point * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
    return torch.cat([pooled_max, pooled_mean], dim=-1)


class CsiEncoder(nn.Module):
    """WiFi CSI (B, 2, A, S, P) [+ wifi_mask (B, P)] -> feature: amplitude and phase of the A
    antennas as 2A channels of a subcarrier x packet image, plus (``config.csi_mask_channel``) the
    packet mask as one more (1 measured, 0 filled: model/csi.py), a small conv net and global
    average pooling. A batch without ``wifi_mask`` counts every packet as measured.

    Training mode drops one packet of a sample with probability ``config.csi_packet_dropout``
    (:func:`~mmhpe_ros.model.csi.drop_csi_packets`), so the net learns to read filled packets.
    """

    def __init__(self, config: ModelConfig, key: str = "wifi", mask_key: str = WIFI_MASK) -> None:
        super().__init__()
        self.key, self.mask_key = key, mask_key
        self.use_mask = config.csi_mask_channel
        self.packet_dropout = config.csi_packet_dropout
        parts, antennas = input_shapes(config)[key][0][:2]
        w = config.csi_width
        self.conv = nn.Sequential(
            *conv_block(parts * antennas + int(self.use_mask), w, (2, 1)), *conv_block(w, 2 * w, (2, 2)),
            *conv_block(2 * w, 4 * w, None),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.out = mlp([4 * w, config.feature_dim])

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        csi = inputs[self.key]
        mask = inputs.get(self.mask_key)
        if mask is None:
            mask = torch.ones(csi.shape[0], csi.shape[-1], dtype=torch.bool, device=csi.device)
        if self.training:
            csi, mask = drop_csi_packets(csi, mask.bool(), self.packet_dropout)
        image = csi.flatten(1, 2)  # (B, 2A, S, P)
        if self.use_mask:
            plane = mask.to(image.dtype)[:, None, None, :].expand(-1, 1, image.shape[2], -1)
            image = torch.cat([image, plane], dim=1)  # (B, 2A + 1, S, P)
        return self.out(self.conv(image))


def conv_block(n_in: int, n_out: int, pool: tuple[int, int] | None) -> list[nn.Module]:
    """Conv 5x3 (subcarriers x packets), GroupNorm, ReLU, optional max-pool."""
    layers: list[nn.Module] = [nn.Conv2d(n_in, n_out, kernel_size=(5, 3), padding=(2, 1)),
                               nn.GroupNorm(8, n_out), nn.ReLU(inplace=True)]
    return layers + ([nn.MaxPool2d(pool)] if pool else [])


# -- the paper's encoders -----------------------------------------------------------------------


class TemporalKeypointEncoder(nn.Module):
    """A window of 2D keypoint frames (B, T, ...) -> feature: VideoPose3D-style dilated temporal
    convolutions (Pavllo et al., CVPR 2019), causal: the window ends at the current frame.

    Kernel-3 convolutions with dilations 1, 3, 9, ... shrink ``T = 3^L`` frames to one; each block
    after the first has a residual connection from the last frames of its input (VideoPose3D's
    causal slicing). Channels: ``hidden_dim`` (VideoPose3D: 1024); GroupNorm for its BatchNorm.
    The window comes from the dataset (``rgb_window``: the current frame and the ``T - 1``
    before it in the same sequence, the first frame repeated at a sequence start). Without a
    window in the inputs (a node feeding single frames) the current frame is repeated: the model
    still runs, as if the person had been still.
    """

    def __init__(self, config: ModelConfig, key: str = "rgb") -> None:
        super().__init__()
        shapes = float_keys(key, config)
        self.keys, self.frames = tuple(shapes), config.rgb_window
        width, channels = sum(int(np.prod(s)) for s in shapes.values()), config.hidden_dim
        self.expand = nn.Sequential(nn.Conv1d(width, channels, 3), nn.GroupNorm(8, channels), nn.ReLU(inplace=True),
                                    nn.Dropout(config.dropout))
        self.blocks = nn.ModuleList()
        dilation = 3
        while dilation < self.frames:
            self.blocks.append(nn.Sequential(
                nn.Conv1d(channels, channels, 3, dilation=dilation), nn.GroupNorm(8, channels), nn.ReLU(inplace=True),
                nn.Dropout(config.dropout),
                nn.Conv1d(channels, channels, 1), nn.GroupNorm(8, channels), nn.ReLU(inplace=True),
                nn.Dropout(config.dropout)))
            dilation *= 3
        self.out = nn.Linear(channels, config.feature_dim)

    def window(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """(B, C, T): every float RGB key per frame, from ``<key>_window`` or the current frame repeated."""
        parts = []
        for key in self.keys:
            stacked = inputs.get(key + WINDOW_SUFFIX)
            if stacked is None:
                frame = inputs[key]
                stacked = frame.unsqueeze(1).expand(frame.shape[0], self.frames, *frame.shape[1:])
            if stacked.shape[1] != self.frames:
                raise ValueError(f"{key}{WINDOW_SUFFIX}: {stacked.shape[1]} frames, the model reads {self.frames}")
            parts.append(stacked.flatten(2))
        return torch.cat(parts, dim=-1).transpose(1, 2)

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        x = self.expand(self.window(inputs))
        for block in self.blocks:
            y = block(x)
            x = x[:, :, x.shape[2] - y.shape[2]:] + y  # causal residual: the last frames
        return self.out(x[:, :, -1])


def gather_points(values: Tensor, index: Tensor) -> Tensor:
    """``values`` (B, N, C) at ``index`` (B, Q, K) -> (B, Q, K, C)."""
    batch = torch.arange(values.shape[0], device=values.device).view(-1, 1, 1)
    return values[batch, index]


def nearest_neighbours(query: Tensor, points: Tensor, k: int, mask: Tensor | None) -> Tensor:
    """Indices (B, Q, k) of each query's k nearest points (B, N, 3); masked-out points come last."""
    distance = (query.pow(2).sum(-1, keepdim=True) - 2 * query @ points.transpose(1, 2)
                + points.pow(2).sum(-1).unsqueeze(1))
    if mask is not None:
        distance = distance.masked_fill(~mask.unsqueeze(1), float("inf"))
    return distance.topk(min(k, points.shape[1]), dim=-1, largest=False).indices


@torch.no_grad()
def farthest_point_sample(points: Tensor, count: int, mask: Tensor | None) -> Tensor:
    """Indices (B, count) of farthest point sampling over (B, N, 3), among the real points of ``mask``
    (once every real point is taken, real points repeat)."""
    batch = torch.arange(points.shape[0], device=points.device)
    if mask is None:
        nearest = torch.full(points.shape[:2], float("inf"), device=points.device, dtype=points.dtype)
        chosen = torch.zeros(points.shape[0], dtype=torch.long, device=points.device)
    else:
        nearest = torch.where(mask, float("inf"), -1.0).to(points.dtype)
        chosen = mask.to(torch.int8).argmax(dim=1)
    picks = []
    for _ in range(count):
        picks.append(chosen)
        centre = points[batch, chosen].unsqueeze(1)
        nearest = torch.minimum(nearest, (points - centre).pow(2).sum(-1))
        chosen = nearest.argmax(dim=1)
    return torch.stack(picks, dim=1)


class PointTransformerLayer(nn.Module):
    """Vector self-attention over each point's k nearest neighbours (Zhao et al., ICCV 2021, eq. 3):
    y_i = sum_j softmax(gamma(phi(x_i) - psi(x_j) + delta_ij)) * (alpha(x_j) + delta_ij),
    delta_ij = theta(p_i - p_j) a positional encoding MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.position = nn.Sequential(nn.Linear(POSITION_DIMS, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.weights = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))

    def forward(self, x: Tensor, xyz: Tensor, index: Tensor, mask: Tensor | None) -> Tensor:
        delta = self.position(xyz.unsqueeze(2) - gather_points(xyz, index))  # (B, N, K, D)
        logits = self.weights(self.query(x).unsqueeze(2) - gather_points(self.key(x), index) + delta)
        if mask is not None:  # padded neighbours get no weight (a padded query's output is ignored)
            logits = logits.masked_fill(~gather_points(mask.unsqueeze(-1), index), -1e9)
        return (logits.softmax(dim=2) * (gather_points(self.value(x), index) + delta)).sum(dim=2)


class PointTransformerBlock(nn.Module):
    """Linear -> Point Transformer layer -> linear, with a residual connection and LayerNorms."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim), nn.ReLU(inplace=True))
        self.layer, self.norm = PointTransformerLayer(dim), nn.LayerNorm(dim)
        self.outer = nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim))

    def forward(self, x: Tensor, xyz: Tensor, index: Tensor, mask: Tensor | None) -> Tensor:
        y = torch.relu(self.norm(self.layer(self.inner(x), xyz, index, mask)))
        return torch.relu(x + self.outer(y))


class PointTransformerEncoder(nn.Module):
    """Point set (B, N, C) [+ mask] -> feature: a Point Transformer (Zhao et al., ICCV 2021).

    Stages at N, N/4, N/16 points (widths 32, 64, 128; the original has five stages up to 512):
    a point MLP, then per stage a Point Transformer block; between stages a transition down
    (farthest point sampling, kNN grouping, MLP, max-pool). Masked max + mean pooling at the end.
    Point positions are the first three columns; the remaining columns (mmWave Doppler, intensity)
    are features only.
    """

    widths = (32, 64, 128)

    def __init__(self, config: ModelConfig, key: str) -> None:
        super().__init__()
        self.key, self.mask_key = key, mask_key(key, config)
        shape = input_shapes(config)[key][0]
        self.k = config.point_neighbours
        counts, n = [], shape[0]
        for _ in self.widths:
            counts.append(max(1, n))
            n //= 4
        self.counts = tuple(counts)
        self.embed = mlp([shape[-1], self.widths[0], self.widths[0]], final_activation=True)
        self.blocks = nn.ModuleList(PointTransformerBlock(w) for w in self.widths)
        self.down = nn.ModuleList(mlp([POSITION_DIMS + a, b], final_activation=True)
                                  for a, b in zip(self.widths[:-1], self.widths[1:]))
        self.out = mlp([2 * self.widths[-1], config.feature_dim])

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        points = inputs[self.key]
        mask = inputs[self.mask_key] if self.mask_key is not None else None
        xyz, x = points[..., :POSITION_DIMS], self.embed(points)
        for stage, block in enumerate(self.blocks):
            if stage > 0:  # transition down to this stage's points
                centres = farthest_point_sample(xyz, self.counts[stage], mask)
                centre_xyz = gather_points(xyz, centres.unsqueeze(-1)).squeeze(2)
                group = nearest_neighbours(centre_xyz, xyz, self.k, mask)
                grouped = torch.cat([gather_points(xyz, group) - centre_xyz.unsqueeze(2), gather_points(x, group)], -1)
                features = self.down[stage - 1](grouped)
                if mask is not None:
                    features = features.masked_fill(~gather_points(mask.unsqueeze(-1), group), 0.0)
                    mask = gather_points(mask.unsqueeze(-1), centres.unsqueeze(-1)).squeeze(2).squeeze(-1)
                x, xyz = features.amax(dim=2), centre_xyz
            x = block(x, xyz, nearest_neighbours(xyz, xyz, self.k, mask), mask)
        return self.out(masked_pool(x, mask))


class MetaFiEncoder(nn.Module):
    """WiFi CSI (B, 2, A, S, P) -> feature, MetaFi++-style (Zhou et al., 2023): a convolutional
    stem over the subcarrier x packet image of amplitude and phase, then a transformer encoder
    over the stem's feature cells as tokens (learnt positional embedding), mean-pooled.
    Sizes are ours (two conv blocks of csi_width and 2 x csi_width channels, two transformer
    layers of feature_dim with 4 heads); MetaFi++'s own layer sizes are not reproduced."""

    def __init__(self, config: ModelConfig, key: str = "wifi") -> None:
        super().__init__()
        self.key = key
        shape = input_shapes(config)[key][0]
        w, d = config.csi_width, config.feature_dim
        self.stem = nn.Sequential(*conv_block(shape[0] * shape[1], w, (2, 1)), *conv_block(w, 2 * w, (2, 2)))
        with torch.no_grad():
            cells = self.stem(torch.zeros(1, shape[0] * shape[1], *shape[2:])).shape[2:]
        self.tokens = nn.Linear(2 * w, d)
        self.position = nn.Parameter(torch.zeros(1, int(np.prod(cells)), d))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=2 * d, dropout=config.dropout,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d))

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        cells = self.stem(inputs[self.key].flatten(1, 2)).flatten(2).transpose(1, 2)  # (B, cells, 2w)
        tokens = self.transformer(self.tokens(cells) + self.position)
        return self.out(tokens.mean(dim=1))


def build_encoder(modality: str, config: ModelConfig) -> nn.Module:
    """The encoder ``config`` chooses for ``modality``."""
    if modality == "rgb":
        return TemporalKeypointEncoder(config) if config.rgb_encoder == "temporal" else KeypointEncoder(config)
    if modality in ("lidar", "mmwave"):
        choice = config.lidar_encoder if modality == "lidar" else config.mmwave_encoder
        return PointTransformerEncoder(config, modality) if choice == "point_transformer" else PointEncoder(config, modality)
    if modality == "wifi":
        return MetaFiEncoder(config) if config.wifi_encoder == "metafi" else CsiEncoder(config)
    raise ValueError(f"no encoder for modality {modality!r}")
