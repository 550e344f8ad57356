"""The generator and discriminator builders.

``choice`` picks a family of defaults (gan: MLP; dcgan: convolutional; cgan: conditional conv; wgan: critic
without batch norm, for weight clipping; wgan_gp: critic with layer norm, for the per-sample gradient
penalty); every other key in :data:`NETWORK_OPTIONS_SCHEMA` can override it. The options and their resolution
live in :mod:`models.config`; this namespace names the few the network code and its callers use, and imports no
Keras, so that a bad config or data path is reported before Keras loads; the builders are
:mod:`models.networks.generator` and :mod:`models.networks.discriminator`.
"""
from models.config import NETWORK_CHOICES, NETWORK_OPTIONS_SCHEMA, is_conditional, needs_labels

__all__ = ["NETWORK_CHOICES", "NETWORK_OPTIONS_SCHEMA", "is_conditional", "needs_labels"]
