"""One encoder per modality: model-ready inputs (model/inputs.py) -> a (B, feature_dim) feature.

Each encoder's ``forward`` takes the whole batched input dict and reads its own keys, so the
radar encoder finds its point mask. No batch normalisation anywhere: absent modalities arrive as
zeros and must not shift statistics shared across the batch.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from mmhpe_ros.model.config import ModelConfig
from mmhpe_ros.model.csi import drop_csi_packets
from mmhpe_ros.model.inputs import MMWAVE_MASK, RGB_SCORE, WIFI_MASK
from mmhpe_ros.modalities import LIDAR_FIELDS, MMWAVE_FIELDS
from mmhpe_ros.skeleton import NUM_KEYPOINTS_2D


def mlp(sizes: list[int], final_activation: bool = False) -> nn.Sequential:
    """Linear layers with LayerNorm + ReLU between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or final_activation:
            layers += [nn.LayerNorm(n_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class KeypointEncoder(nn.Module):
    """Keypoints on the person's plane (B, 17, 3) and their scores (B, 17) -> feature: an MLP on
    the flattened coordinates and scores (model/body.py: a keypoint of score 0 is all zeros)."""

    def __init__(self, config: ModelConfig, key: str = "rgb") -> None:
        super().__init__()
        self.key = key
        self.net = mlp([NUM_KEYPOINTS_2D * 4, 256, 256, config.feature_dim])

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        keypoints = inputs[self.key]
        return self.net(torch.cat([keypoints.flatten(1), inputs[RGB_SCORE]], dim=1))


class PointEncoder(nn.Module):
    """Point set (B, N, C) [+ mask (B, N)] -> feature: PointNet shared MLP, masked max + mean pool."""

    def __init__(self, config: ModelConfig, key: str, channels: int, mask_key: str | None = None) -> None:
        super().__init__()
        self.key, self.mask_key = key, mask_key
        self.point_mlp = mlp([channels, 64, 128, 256], final_activation=True)
        self.out = mlp([2 * 256, config.feature_dim])

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        per_point = self.point_mlp(inputs[self.key])  # (B, N, 256)
        if self.mask_key is None:
            pooled_max, pooled_mean = per_point.amax(dim=1), per_point.mean(dim=1)
        else:
            mask = inputs[self.mask_key].unsqueeze(-1)  # (B, N, 1) bool
            # Features are >= 0 after ReLU, so 0 is a neutral fill for the max of an empty set.
            pooled_max = per_point.masked_fill(~mask, 0.0).amax(dim=1)
            count = mask.sum(dim=1).clamp(min=1)
            pooled_mean = (per_point * mask).sum(dim=1) / count
        return self.out(torch.cat([pooled_max, pooled_mean], dim=-1))


class CsiEncoder(nn.Module):
    """WiFi CSI (B, 2, 3, 114, 10) [+ wifi_mask (B, 10)] -> feature: amplitude and phase of the 3
    antennas as 6 channels of a subcarrier x packet image, plus (``config.csi_mask_channel``) the
    packet mask as a 7th (1 measured, 0 filled: model/csi.py), a small conv net and global average
    pooling. A batch without ``wifi_mask`` counts every packet as measured.

    Training mode drops one packet of a sample with probability ``config.csi_packet_dropout``
    (:func:`~mmhpe_ros.model.csi.drop_csi_packets`), so the net learns to read filled packets.
    """

    def __init__(self, config: ModelConfig, key: str = "wifi", mask_key: str = WIFI_MASK) -> None:
        super().__init__()
        self.key, self.mask_key = key, mask_key
        self.use_mask = config.csi_mask_channel
        self.packet_dropout = config.csi_packet_dropout

        def block(n_in: int, n_out: int, pool: tuple[int, int] | None) -> list[nn.Module]:
            layers: list[nn.Module] = [
                nn.Conv2d(n_in, n_out, kernel_size=(5, 3), padding=(2, 1)),
                nn.GroupNorm(8, n_out),
                nn.ReLU(inplace=True),
            ]
            return layers + ([nn.MaxPool2d(pool)] if pool else [])

        w = config.csi_width
        self.conv = nn.Sequential(
            *block(6 + int(self.use_mask), w, (2, 1)), *block(w, 2 * w, (2, 2)), *block(2 * w, 4 * w, None),
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
        image = csi.flatten(1, 2)  # (B, 6, 114, 10)
        if self.use_mask:
            plane = mask.to(image.dtype)[:, None, None, :].expand(-1, 1, image.shape[2], -1)
            image = torch.cat([image, plane], dim=1)  # (B, 7, 114, 10)
        return self.out(self.conv(image))


def build_encoder(modality: str, config: ModelConfig) -> nn.Module:
    """The encoder suited to ``modality``."""
    if modality == "rgb":
        return KeypointEncoder(config)
    if modality == "lidar":
        return PointEncoder(config, "lidar", len(LIDAR_FIELDS))
    if modality == "mmwave":
        return PointEncoder(config, "mmwave", len(MMWAVE_FIELDS), mask_key=MMWAVE_MASK)
    if modality == "wifi":
        return CsiEncoder(config)
    raise ValueError(f"no encoder for modality {modality!r}")
