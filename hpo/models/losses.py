"""Segmentation losses for class imbalance, from MONAI, with deep supervision where the network has it."""

from __future__ import annotations

from torch import nn

LOSSES = ("dice_ce", "dice_focal", "generalized_dice_focal")


def build_loss(name: str, deep_supervision: bool = False) -> nn.Module:
    """Build a soft-Dice-based loss on softmax outputs and integer labels [B, 1, *spatial].

    With deep supervision, the loss takes the DynUNet training output (one map per decoder level)
    and sums the levels with weights that halve at each coarser level.
    """
    from monai.losses import DeepSupervisionLoss, DiceCELoss, DiceFocalLoss, GeneralizedDiceFocalLoss

    common = {"to_onehot_y": True, "softmax": True}
    if name == "dice_ce":
        loss = DiceCELoss(**common)
    elif name == "dice_focal":
        loss = DiceFocalLoss(**common)
    elif name == "generalized_dice_focal":
        loss = GeneralizedDiceFocalLoss(**common)
    else:
        msg = f"loss must be one of {LOSSES} but got '{name}'"
        raise ValueError(msg)
    return DeepSupervisionLoss(loss, weight_mode="exp") if deep_supervision else loss
