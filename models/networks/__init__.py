"""The generator and discriminator builders, and the config keys that shape them.

``choice`` picks a family of defaults (gan: MLP; dcgan: convolutional; cgan: conditional conv; wgan: critic
without batch norm, for weight clipping; wgan_gp: critic with layer norm, for the per-sample gradient
penalty); every other key in :data:`NETWORK_OPTIONS_SCHEMA` can override it.

This namespace holds only the options, which need no Keras, so that a bad config or data path is reported
before Keras loads; the builders are :mod:`models.networks.generator` and :mod:`models.networks.discriminator`.
"""
from models.networks.options import NETWORK_CHOICES, NETWORK_OPTIONS_SCHEMA, is_conditional, needs_labels

__all__ = ["NETWORK_CHOICES", "NETWORK_OPTIONS_SCHEMA", "is_conditional", "needs_labels"]
