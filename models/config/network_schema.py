"""The network-specific keys of the config's ``generator`` and ``discriminator`` objects, and what they mean.

Each key's description is its documentation (``python -m models.train --list-options`` prints it). Keys whose
default depends on the role, the choice or the architecture default to ``null`` here; :func:`models.config.resolve`
fills them in (:mod:`models.config.networks`, from :mod:`models.config.defaults`).
"""
from __future__ import annotations

from models.config.defaults import AUTO_PALETTE_MULTI, AUTO_PALETTE_SINGLE, MULTI_COLOUR_SHARE

NETWORK_CHOICES = ("gan", "dcgan", "cgan", "wgan", "wgan_gp")

ACTIVATIONS = ("relu", "leaky_relu", "selu", "elu", "gelu")

NETWORK_OPTIONS_SCHEMA: dict = {
    "architecture": {
        "description": "Layer family: 'mlp' (dense layers on flattened images), 'conv' (strided convolutions) or "
        "'resnet' (SNGAN/BigGAN residual blocks of 3x3 convs: the generator's blocks upsample by nearest "
        "neighbour, the discriminator's average-pool and end in ReLU, global sum pooling and Dense(1); "
        "kernel_size, refine_kernel_size, strides, padding and upsampling do not apply; base_size, base_width, "
        "width, max_width and widths size it as for conv, with one width per block). resnet defaults to relu "
        "activations and no discriminator normalization. 'shapes' (generator only, with palette 2): a vector "
        "generator for marks made of geometric parts - dense layers (widths, default [256, 256]) give "
        "shape_count primitives (boxes with rounded corners, circles and stadiums at the limit; rotated, "
        "hollowed into rings or frames, adding to the mark or carving holes in it), rendered anti-aliased into "
        "the mask that the palette paints. 'vector' (generator only, with a palette): a layered vector "
        "generator - dense layers (widths, default [256, 256]) give a scene of vector_parts painted in order over "
        "the background (palette entry 0): rounded boxes and rings, closed cubic Bezier paths (even-odd fill) and "
        "Bezier strokes with round caps, each painting one palette entry; models.generate writes it as SVG at any "
        "size. null: mlp for gan, conv for every other choice.",
        "enum": [None, "mlp", "conv", "resnet", "shapes", "vector"],
        "default": None,
    },
    "conditional": {
        "description": "Feed the class label in through a learned embedding (needs a labelled dataset). "
        "Generator: the embedding is concatenated to the latent vector. Discriminator: conv - projected to one "
        "extra image plane; mlp - concatenated to the flattened image. null: true for cgan, false otherwise.",
        "type": ["boolean", "null"],
        "default": None,
    },
    "conditioning": {
        "description": "How a conditional network uses the label. 'concat': as 'conditional' describes. "
        "'projection' (discriminator only; Miyato & Koyama 2018): score = Dense(1)(h) + <embed(y), h> on the "
        "features h that the last layer reads (resnet: the pooled features); no label plane. 'batch_norm' "
        "(generator only, needs normalization 'batch'): every batch norm becomes class-conditional, "
        "x_hat * gamma_y + beta_y with per-class gamma (starting at 1) and beta (starting at 0); the latent "
        "vector goes in without the label. Ignored by a network that is not conditional. null: concat.",
        "enum": [None, "concat", "projection", "batch_norm"],
        "default": None,
    },
    "spectral_norm": {
        "description": "Wrap every Conv2D and Dense of the network (and a projection's class embedding) in "
        "keras.layers.SpectralNormalization (Miyato et al. 2018): each training-mode call runs one power "
        "iteration and divides the kernel by its largest singular value.",
        "type": "boolean",
        "default": False,
    },
    "self_attention": {
        "description": "conv and resnet: the feature-map height at which one SAGAN self-attention block is "
        "inserted (1x1-conv query, key and value, keys and values max-pooled 2x2 on even maps of 8 px or more, "
        "as in BigGAN), added to its input through a per-channel scale that starts at 0. The height must be one "
        "the network passes through (generator: the base size and each doubling; discriminator: each "
        "downsampled size). null: none.",
        "type": ["integer", "null"],
        "minimum": 1,
        "default": None,
    },
    "skip_excitation": {
        "description": "Generator, conv or resnet: FastGAN's skip-layer excitation (Liu et al. 2021). Each feature "
        "map four times as high as an earlier one (7 -> 28, 4 -> 16, 8 -> 32 px) has its channels gated by "
        "it: the earlier map, average-pooled to at most 4x4, goes through Dense, LeakyReLU(0.1), Dense and a "
        "sigmoid, one gate per channel. The coarse layers steer the fine ones directly, a short gradient "
        "path that speeds up learning on small data. A generator with no such pair of maps is refused.",
        "type": "boolean",
        "default": False,
    },
    "minibatch_std": {
        "description": "Discriminator, conv or resnet: ProGAN's minibatch standard deviation (Karras et al. "
        "2018). Its last feature map gets one more channel, the standard deviation of the features across a "
        "group of this many images (every (batch / group)-th image of the batch), averaged over features and "
        "pixels: a generator that draws too little variety is told apart by it. A batch that the group size "
        "does not divide uses the largest size under it that does. 0: off. With configs/logos_vector.json on the "
        "multi-colour logos, 4 scored -9% in KID against the preset with seed 0 and +82% with seed 2: no gain "
        "there (docs/experiments.md, colour_v26 and colour_v27).",
        "type": "integer",
        "minimum": 0, "maximum": 64,
        "default": 0,
    },
    "shape_count": {
        "description": "Generator, architecture shapes: how many primitives each image is drawn from (each may "
        "also switch itself off).",
        "type": "integer",
        "minimum": 1, "maximum": 256,
        "default": 16,
    },
    "vector_parts": {
        "description": "Generator, architecture vector: the kinds of its parts in painter's order (later parts "
        "paint over earlier ones): 'box' (rounded box, rotated, filled or a ring), 'path' (closed path of "
        "path_segments cubic Bezier segments, even-odd fill) or 'stroke' (open Bezier curve of stroke_segments "
        "segments with a width and round caps). Each part paints one palette entry or is off; painting entry 0, "
        "the background, carves through what lies beneath. null: [box, path, path, stroke, box, path, stroke, "
        "path].",
        "type": ["array", "null"],
        "items": {"enum": ["box", "path", "stroke"]},
        "minItems": 1, "maxItems": 64,
        "default": None,
    },
    "path_segments": {
        "description": "Generator, architecture vector: cubic Bezier segments of each closed path (it starts as "
        "a circle).",
        "type": "integer",
        "minimum": 2, "maximum": 12,
        "default": 4,
    },
    "stroke_segments": {
        "description": "Generator, architecture vector: cubic Bezier segments of each stroke (it starts as a "
        "straight line).",
        "type": "integer",
        "minimum": 1, "maximum": 8,
        "default": 2,
    },
    "outline_start_spread": {
        "description": "Generator, architecture vector: how far the paths' and strokes' control points start "
        "from their base shapes (circles, straight lines) across latent draws, as a multiple of the spread the "
        "other parameters start with (1: as varied as centres and sizes; near 0: every outline starts smooth "
        "and bends only as training asks; above 1: outlines start more varied than the layout). On the "
        "multi-colour logos 0.2, 2 and 3 all scored worse than 1 (docs/experiments.md, colour_v10 and v11).",
        "type": "number",
        "minimum": 0, "maximum": 4,
        "default": 1.0,
    },
    "part_latent_dim": {
        "description": "Generator, architecture vector: give each part its own slice of this many values of the "
        "latent vector (parts in order, from its start; parts x this must fit in latent_dim), drawn with the "
        "shared context through a small head shared by every part of its kind and added to the part's values, "
        "as BlockGAN and GIRAFFE give each object its own latent. 0: off, every part drawn from the shared "
        "context alone. Measured with 8 on the multi-colour logos: no gain, parts that scatter instead of "
        "agreeing on one tile (docs/experiments.md, 2026-12-08).",
        "type": "integer",
        "minimum": 0, "maximum": 64,
        "default": 0,
    },
    "colour_choice": {
        "description": "Generator, architecture vector: how a part picks its colour. 'hard': one palette entry, "
        "chosen outright (straight-through gradient); 'soft': a softmax mix of the entries (a colour between "
        "them, exact in the SVG; repainting with --colours mixes the new entries alike). Either way a part is "
        "on or off outright. On the multi-colour logos 'soft' scored far worse (docs/experiments.md, colour_v12).",
        "enum": ["hard", "soft"],
        "default": "hard",
    },
    "carving": {
        "description": "Generator, architecture vector: what a part that paints palette entry 0 (the background) "
        "cuts. 'beneath': the parts under it in painter's order, as any later part covers earlier ones; 'all': "
        "every part, as the shapes generator's carving parts do (the renderer and the SVG paint the carving "
        "parts last, a second pass over the pixels). 'all' needs colour_choice 'hard'. On the multi-colour logos "
        "'all' scored worse, in part from the pass's cost (docs/experiments.md, colour_v16).",
        "enum": ["beneath", "all"],
        "default": "beneath",
    },
    "curve_samples": {
        "description": "Generator, architecture vector: points the renderer samples along each Bezier segment to "
        "measure distances to it (more: closer to the exact curve that the SVG draws, and slower).",
        "type": "integer",
        "minimum": 2, "maximum": 32,
        "default": 4,
    },
    "edge_px": {
        "description": "Generator, architecture vector: how soft the renderer's edges are, as the scale in pixels "
        "of the logistic that turns a part's signed distance into coverage (coverage goes from 10% to 90% over "
        "4.4 x this many pixels). 0.3: about the slope of an SVG renderer's anti-aliasing, so a sample's SVG "
        "draws as the generator does; softer edges give every parameter a gradient from more pixels around "
        "its edges (the shapes generator draws at 0.5) and blur the PNG a little against the SVG (0.02 apart at "
        "0.5). On the multi-colour logos, with boxes only, 0.5 scored 9% to 23% better than the shapes preset in "
        "three runs, 0.4 level with it and 0.3 worse; with paths and strokes 0.5 did not help; 0.8 blurred every "
        "sample (docs/experiments.md, colour_v14 to colour_v18). configs/logos_vector.json uses 0.5.",
        "type": "number",
        "minimum": 0.1, "maximum": 2,
        "default": 0.3,
    },
    "edge_px_start": {
        "description": "Generator, architecture vector: annealed edges. When set, training draws the edges this "
        "soft (in edge_px's units) at first and sharpens them linearly to edge_px over edge_anneal_kimg, so a "
        "part's parameters feel pixels farther from its edges while the layout is still far from the data's; "
        "samples, exports and SVGs are always drawn at edge_px. null: edge_px from the first step. On the "
        "multi-colour logos, 1.0 or 1.5 px annealed to 0.5 and 1.0 to 0.4 all scored worse than the preset "
        "without it (docs/experiments.md, colour_v22).",
        "type": ["number", "null"],
        "minimum": 0.1, "maximum": 4,
        "default": None,
    },
    "edge_anneal_kimg": {
        "description": "Generator, architecture vector, with edge_px_start: over how many thousand images the "
        "generator draws in training the edges go from edge_px_start to edge_px (a step draws n_critic + 1 "
        "batches: those the discriminator's updates see and the generator's own). Counted in the generator's "
        "weights, so a resumed run goes on where it stopped.",
        "type": "number",
        "minimum": 0, "maximum": 100000,
        "default": 200,
    },
    "embedding_dim": {
        "description": "Size of the label embedding of a conditional network.",
        "type": "integer",
        "minimum": 1, "maximum": 1024,
        "default": 50,
    },
    "width": {
        "description": "Conv base width (ngf / ndf) used when 'widths' is null: the generator's last hidden layer "
        "has 'width' channels, doubling towards the coarse end; the discriminator's first layer has 'width' "
        "channels, doubling at each downsampling. Capped at 'max_width'.",
        "type": "integer",
        "minimum": 1, "maximum": 4096,
        "default": 64,
    },
    "max_width": {
        "description": "Upper bound on the channels of any automatically sized conv layer.",
        "type": "integer",
        "minimum": 1, "maximum": 4096,
        "default": 512,
    },
    "widths": {
        "description": "Explicit hidden layer sizes, input side first (overrides 'width'). mlp: units of each dense "
        "layer (null: generator [128, 256, 512, 1024], discriminator [512, 256]). conv generator: channels of "
        "each conv after the latent projection; the first ones upsample, as many as the image size needs, the "
        "rest keep the size, and the output conv upsamples too when there are fewer widths than upsamplings. "
        "conv discriminator: channels of each conv. shapes and vector generators: units of each dense layer "
        "before the primitives or the scene (null: [256, 256]).",
        "type": ["array", "null"],
        "items": {"type": "integer", "minimum": 1, "maximum": 4096}, "maxItems": 64,
        "default": None,
    },
    "base_size": {
        "description": "Generator, conv: the height the latent projection starts from; the image height must be "
        "base_size * 2^k (k upsamplings). null: the image size halved while the half is a whole number >= 4, "
        "e.g. 7 for 28/56/112 px, 4 for 32/64/128 px.",
        "type": ["integer", "null"],
        "minimum": 1, "maximum": 1024,
        "default": None,
    },
    "base_width": {
        "description": "Generator, conv: channels of the latent projection at the base size. "
        "null: width * 2^(upsamplings - 1), capped at max_width.",
        "type": ["integer", "null"],
        "minimum": 1, "maximum": 4096,
        "default": None,
    },
    "upsampling": {
        "description": "Generator, conv: how a layer doubles the size - 'transpose' (stride-2 transposed conv), "
        "'upsample' (nearest-neighbour upsampling, then a conv) or 'bilinear' (bilinear upsampling, then a conv).",
        "enum": ["transpose", "upsample", "bilinear"],
        "default": "transpose",
    },
    "kernel_size": {
        "description": "Conv kernel size of the layers that change the image size (discriminator: every conv).",
        "type": "integer",
        "minimum": 1, "maximum": 31,
        "default": 4,
    },
    "refine_kernel_size": {
        "description": "Generator, conv: kernel size of the convs that keep the size (extra widths and a "
        "non-upsampling output conv). null: kernel_size.",
        "type": ["integer", "null"],
        "minimum": 1, "maximum": 31,
        "default": None,
    },
    "strides": {
        "description": "Discriminator, conv: stride of every conv (2 halves the size at each layer).",
        "enum": [1, 2],
        "default": 2,
    },
    "padding": {
        "description": "Discriminator, conv: 'same' or 'valid' (each conv shrinks by kernel_size - 1).",
        "enum": ["same", "valid"],
        "default": "same",
    },
    "normalization": {
        "description": "Normalization after each hidden layer but the discriminator's first and the mlp "
        "generator's first (resnet: before every activation in the blocks): 'batch', 'layer' or 'none'. "
        "wgan_gp critics cannot use 'batch' (the gradient penalty is per sample). null: batch for generators "
        "and dcgan/cgan discriminators, layer for the wgan_gp critic, none for gan, wgan and resnet "
        "discriminators.",
        "enum": [None, "batch", "layer", "none"],
        "default": None,
    },
    "batch_norm_momentum": {
        "description": "Momentum of the batch-norm moving statistics (0.9 matches PyTorch's 0.1).",
        "type": "number",
        "exclusiveMinimum": 0,
        "exclusiveMaximum": 1,
        "default": 0.9,
    },
    "activation": {
        "description": f"Hidden activation: one of {', '.join(ACTIVATIONS)}. null: relu for conv generators "
        "and resnet networks, leaky_relu otherwise.",
        "enum": [None, *ACTIVATIONS],
        "default": None,
    },
    "leaky_relu_slope": {
        "description": "Negative slope of leaky_relu.",
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "default": 0.2,
    },
    "dropout": {
        "description": "Dropout rate. Discriminator: after every hidden layer. Generator: after the latent "
        "projection only (as the logo walkthrough did). 0 disables it.",
        "type": "number",
        "minimum": 0,
        "exclusiveMaximum": 1,
        "default": 0.0,
    },
    "output_activation": {
        "description": "Generator: 'tanh' (images in [-1, 1]) or 'sigmoid' (images in [0, 1]); the trainer scales "
        "the data to match.",
        "enum": ["tanh", "sigmoid"],
        "default": "tanh",
    },
    "palette": {
        "description": "Generator: draw flat-colour images (logos, icons, clip art) from a palette of this many "
        "colours chosen per image. The last layer gives each pixel logits over the palette entries instead of "
        "pixel values, a small dense network on the generator's input gives the palette's colours (through "
        "output_activation), and each pixel is the softmax-weighted mix of them. 2: a mark of one colour on a "
        f"background. 'auto' (architecture vector): decided from the data when a run starts - {AUTO_PALETTE_MULTI} "
        f"when at least {MULTI_COLOUR_SHARE:.0%} of the images have a mark of two or more colours (brand logos in "
        f"their own colours), else {AUTO_PALETTE_SINGLE} (icons of one colour, where eight boxes scored 59% worse "
        "in KID with a palette of 4 than logos_shapes, and level with it with a palette of 2: docs/experiments.md, "
        "simple_v4 and simple_v5) - and saved as such in the run's config.json. null: the last layer gives the "
        "pixel values directly.",
        "type": ["integer", "string", "null"],
        "pattern": "^auto$",
        "minimum": 2,
        "maximum": 64,
        "default": None,
    },
    "palette_background": {
        "description": "Generator with a palette: its first entry is this fixed colour ('#rrggbb'; a grey "
        "dataset takes its luma) and the generator chooses only the others, for datasets whose marks lie on one "
        "known background, such as logos flattened onto white ('#ffffff'). 'auto': decided from the data when a "
        "run starts - the colour that at least 80% of the images have all around their border, else null - and "
        "saved as such in the run's config.json. null: every entry is chosen per image (logos on tiles of "
        "many colours).",
        "type": ["string", "null"],
        "pattern": "^(#[0-9a-fA-F]{6}|auto)$",
        "default": None,
    },
    "palette_scale": {
        "description": "Generator with a palette: the size at which it draws, as a fraction 1/palette_scale "
        "of the image. conv and resnet: their last doublings (log2 of this many; resnet: and, unless widths are "
        "given, their blocks) are left out and the palette logits, drawn that much smaller, are enlarged "
        "bilinearly before the softmax: smooth shapes with crisp edges, no pixel-level speckle, a cheaper last "
        "layer. shapes: the renderer draws that much smaller, for a cost that falls with its square. vector: the "
        "paths' and strokes' distances (its main cost) are measured on a grid that many times coarser and "
        "interpolated before coverage: edges stay as sharp, only strokes and parts thinner than that many pixels "
        "draw a little thinner. 1: drawn at the image size.",
        "enum": [1, 2, 4],
        "default": 1,
    },
    "init_std": {
        "description": "Kernels start from N(0, init_std) as in DCGAN; null keeps Keras' Glorot-uniform default.",
        "type": ["number", "null"],
        "exclusiveMinimum": 0,
        "default": 0.02,
    },
}
