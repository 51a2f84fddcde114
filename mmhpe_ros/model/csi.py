"""Missing CSI packets of a frame window: filled from their neighbours in time and marked.

A window is the model's (channels, antennas, subcarriers, packets) CSI block (channel 0 the
amplitude). A packet is *missing* when its amplitude has no finite value (the node's windows carry
NaN there; MM-Fi files can hold such packets too). :func:`fill_csi_gaps` replaces each missing
packet, per channel, antenna and subcarrier, by the linear interpolation in time between the
nearest present packets before and after it; a missing packet with a present packet on one side
only (the window's first or last packets) takes the values of the nearest present packet. The
returned mask marks the packets that were measured, so the model knows which ones were filled
(issue 12: a missing packet must never reach the min-max normalisation as 0).

:func:`drop_csi_packets` is the matching training augmentation on prepared batches (torch): it
drops one packet of a sample and fills it the same way, clearing its mask bit.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def packets_present(amplitude: np.ndarray) -> np.ndarray:
    """(packets,) bool: which packets of an (..., packets) amplitude block hold any finite value."""
    amplitude = np.asarray(amplitude)
    finite = np.isfinite(amplitude).reshape(-1, amplitude.shape[-1])
    return finite.any(axis=0)


def fill_csi_gaps(csi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, A, S, P) block -> (filled copy as float64, (P,) bool mask of the measured packets).

    See the module docstring for the rule. A block with no packet present comes back unchanged
    (all NaN where it was) with an all-False mask; one with every packet present comes back equal.
    """
    block = np.array(csi, dtype=np.float64)  # a copy: the caller's array is never changed
    present = packets_present(block[0])
    missing = np.flatnonzero(~present)
    if not present.any() or missing.size == 0:
        return block, present
    measured = np.flatnonzero(present)
    after = np.searchsorted(measured, missing)  # index into `measured` of the next present packet
    before_packet = measured[np.maximum(after - 1, 0)]
    after_packet = measured[np.minimum(after, measured.size - 1)]
    span = after_packet - before_packet
    # Weight of the later neighbour: linear in time between the two, 0 or 1 at the window's edges.
    weight = np.where(span > 0, (missing - before_packet) / np.maximum(span, 1), 0.0)
    weight = np.where(after >= measured.size, 0.0, np.where(after == 0, 1.0, weight))
    early, late = block[..., before_packet], block[..., after_packet]
    with np.errstate(invalid="ignore"):  # a value missing in a neighbour stays missing (NaN)
        between = early * (1.0 - weight) + late * weight
    block[..., missing] = np.where(weight == 0.0, early, np.where(weight == 1.0, late, between))
    return block, present


def drop_csi_packets(csi: Tensor, mask: Tensor, probability: float,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Training augmentation: with ``probability`` per sample, drop one measured packet and fill it.

    ``csi`` (B, C, A, S, P) prepared CSI, ``mask`` (B, P) bool (True: measured). The dropped packet
    (chosen uniformly) becomes the mean of its two neighbours, or its one neighbour at the window's
    edge, as :func:`fill_csi_gaps` fills an isolated gap; its mask bit is cleared. Returns new
    tensors (the inputs are left as they are).
    """
    batch, packets = csi.shape[0], csi.shape[-1]
    if probability <= 0.0 or batch == 0 or packets < 2:
        return csi, mask
    device = csi.device
    chosen = torch.rand(batch, generator=generator, device="cpu").to(device) < probability
    slot = torch.randint(0, packets, (batch,), generator=generator, device="cpu").to(device)
    chosen &= mask[torch.arange(batch, device=device), slot]  # only measured packets are dropped
    if not bool(chosen.any()):
        return csi, mask
    rows = torch.nonzero(chosen).squeeze(1)
    slot = slot[rows]
    previous, following = (slot - 1).clamp(min=0), (slot + 1).clamp(max=packets - 1)
    previous = torch.where(slot == 0, following, previous)
    following = torch.where(slot == packets - 1, previous, following)
    out = csi.clone()
    out[rows, ..., slot] = 0.5 * (csi[rows, ..., previous] + csi[rows, ..., following])  # (R, C, A, S)
    new_mask = mask.clone()
    new_mask[rows, slot] = False
    return out, new_mask
