"""U-Net variants from MONAI, built from `NetworkSettings`."""

from __future__ import annotations

from torch import nn

from hpo.models.settings import NetworkSettings

ARCHITECTURES = ("unet", "attention_unet", "dynunet")


def build_network(settings: NetworkSettings) -> nn.Module:
    """Build a MONAI U-Net, attention U-Net or DynUNet; only DynUNet has deep-supervision heads."""
    from monai.networks.nets import AttentionUnet, DynUNet, UNet

    levels = len(settings.channels)
    strides = (2,) * (levels - 1)
    if settings.architecture == "unet":
        return UNet(
            spatial_dims=settings.spatial_dims, in_channels=settings.in_channels, out_channels=settings.out_channels,
            channels=settings.channels, strides=strides, num_res_units=settings.num_res_units, dropout=settings.dropout,
        )
    if settings.architecture == "attention_unet":
        return AttentionUnet(
            spatial_dims=settings.spatial_dims, in_channels=settings.in_channels, out_channels=settings.out_channels,
            channels=settings.channels, strides=strides, dropout=settings.dropout,
        )
    if settings.architecture == "dynunet":
        return DynUNet(
            spatial_dims=settings.spatial_dims, in_channels=settings.in_channels, out_channels=settings.out_channels,
            kernel_size=[3] * levels, strides=[1, *strides], upsample_kernel_size=list(strides),
            filters=list(settings.channels), dropout=settings.dropout, res_block=settings.num_res_units > 0,
            deep_supervision=settings.deep_supervision, deep_supr_num=max(1, levels - 2),
        )
    msg = f"architecture must be one of {ARCHITECTURES} but got '{settings.architecture}'"
    raise ValueError(msg)


def patch_multiple(settings: NetworkSettings) -> int:
    """The number every patch side must be divisible by: 2 to the power of the downsampling steps."""
    return 2 ** (len(settings.channels) - 1)
