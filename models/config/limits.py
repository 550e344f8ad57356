"""Names and bounds that more than one part of LogoGAN checks against: the config's schema, the trainer's flags,
the server's parameters and the benches read them from here."""
from __future__ import annotations

from infra.keras_backends import BACKENDS  # noqa: F401  (kept in infra, below models, for infra.device_check)
PRECISIONS = ("float32", "bfloat16", "float16")
CLASS_LOSS_TYPES = ("ac", "adc", "hinge")

# Upper bounds: far above any run this toolkit is meant for, low enough that a config posted to the server
# cannot ask for a machine's worth of memory through one number. 1024 px is the size of the largest
# published GANs; BigGAN trained with batches of 2048; 32 x 32 tiles is the largest grid worth looking at.
MAX_IMAGE_SIZE = 1024
MIN_IMAGE_SIZE = 8  # as every dataset builder's --size: below it there is no mark to learn, only a colour
MAX_BATCH_SIZE = 4096
MAX_GRID_SIDE = 32
MAX_LATENT_DIM = 2048
MAX_STEPS = 10_000_000
MAX_EVAL_SAMPLES = 50_000  # the usual count for a paper's FID
MAX_SEED = 2**32 - 1  # what every backend's random generators take
MAX_DEVICES = 4096
# A config file or request body: a config is a few hundred bytes, a preset with every option listed a few KB; it
# nests four deep (generator.optimizer.learning_rate), and far more is an attack.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_DEPTH = 32
