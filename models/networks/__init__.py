"""The generator and discriminator builders, and the config keys that shape them.

``choice`` picks a family of defaults (gan: MLP; dcgan: convolutional; cgan: conditional conv; wgan: critic
without batch norm, for weight clipping; wgan_gp: critic with layer norm, for the per-sample gradient
penalty); every other key in :data:`NETWORK_OPTIONS_SCHEMA` can override it.
"""
from models.networks.discriminator import build_discriminator
from models.networks.generator import build_generator
from models.networks.options import NETWORK_CHOICES, NETWORK_OPTIONS_SCHEMA, is_conditional

__all__ = [
    "NETWORK_CHOICES",
    "NETWORK_OPTIONS_SCHEMA",
    "build_discriminator",
    "build_generator",
    "is_conditional",
]
