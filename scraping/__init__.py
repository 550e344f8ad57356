"""Stage 1: collect logo images from the web and from icon sets, with provenance."""
