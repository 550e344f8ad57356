"""When a logo counts as multi-colour: the thresholds the multi-colour dataset's builder applies to each mark's
render on transparency (:mod:`preprocessing.colour_logos`) and the trainer applies to flattened images when it
chooses a palette (:func:`models.data.multi_colour_share`), kept in one place so that the two agree."""
from __future__ import annotations

COLOUR_DISTANCE = 60  # RGB distance (0..441) beyond which a pixel is a colour of its own: off the mark's main
# colour (a second colour), or off the background (the mark's)
MIN_SECOND_COLOUR = 0.08  # of a mark's pixels that must be a second colour for the mark to be multi-colour
