"""Networks and losses built from settings, MONAI underneath."""

from hpo.models.losses import build_loss
from hpo.models.networks import build_network
from hpo.models.settings import NetworkSettings

__all__ = ["NetworkSettings", "build_loss", "build_network"]
