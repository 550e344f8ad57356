"""The config's ``augment`` object: differentiable augmentation of what the discriminator sees.

DiffAugment (Zhao et al. 2020) applies the same random, differentiable transforms to real and generated
images before the discriminator, so a discriminator trained on few images cannot simply memorise them and the
generator still learns through the transforms. ADA (Karras et al. 2020) makes the probability of each
transform adaptive. This module holds only the schema, which needs no Keras, so that a bad config is reported
before Keras loads; the transforms are :mod:`models.augment`.
"""
from __future__ import annotations

TRANSFORMS = ("color", "translation", "cutout", "flip")

AUGMENT_SCHEMA: dict = {
    "type": "object",
    "description": "Differentiable augmentation (DiffAugment, optionally with ADA's adaptive probability) of the "
    "real and generated images the discriminator sees. The default {} augments nothing.",
    "additionalProperties": False,
    "default": {},
    "properties": {
        "policy": {
            "description": "The transforms, applied in this order (DiffAugment, Zhao et al. 2020): 'color' (random "
            "brightness, saturation and contrast), 'translation' (a random integer shift, the uncovered area "
            "filled with the middle of the value range), 'cutout' (a random square set to the middle of the "
            "value range) and 'flip' (a left-right mirror of half the images it applies to: at probability 1 the "
            "discriminator sees each image in both orientations equally often, as StyleGAN's --mirror doubles a "
            "small dataset; with configs/logos_vector.json on the 2,040 multi-colour logos it scored 16% worse in KID at "
            "equal time, docs/experiments.md colour_v26). [] (the default) turns augmentation off.",
            "type": "array",
            "items": {"enum": list(TRANSFORMS)},
            "uniqueItems": True,
            "default": [],
        },
        "probability": {
            "description": "Probability that each transform is applied to each image, drawn independently per "
            "image and transform (1: always, as in DiffAugment). With 'adaptive' it is the starting value.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 1.0,
        },
        "adaptive": {
            "description": "Adapt the probability as ADA does (Karras et al. 2020): the discriminator's overfitting "
            "is measured as r_t = E[sign D(real)], the mean sign of its scores on real images; the probability "
            "rises while r_t is above 'target' and falls while it is below, staying within [0, 1].",
            "type": "boolean",
            "default": False,
        },
        "target": {
            "description": "Adaptive only: the value of r_t = E[sign D(real)] the probability steers towards "
            "(ADA uses 0.6).",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.6,
        },
        "adjust_kimg": {
            "description": "Adaptive only: how fast the probability moves - thousands of images shown to the "
            "discriminator over which it can go from 0 to 1 (each batch of N images moves it by "
            "N / (adjust_kimg * 1000)).",
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 100,
        },
        "translation_ratio": {
            "description": "Translation: the largest shift along each axis as a fraction of the image's size "
            "there; the shift is a whole number of pixels in [-s, s], s = round(translation_ratio * size).",
            "type": "number",
            "minimum": 0,
            "maximum": 0.5,
            "default": 0.125,
        },
        "cutout_ratio": {
            "description": "Cutout: the side of the cut-out square (rectangle for non-square images) as a "
            "fraction of the image's size, rounded to whole pixels; its centre is anywhere in the image, so it "
            "may overlap the border.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
        },
    },
}
