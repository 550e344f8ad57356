"""Stage 4: metrics people can compare with papers — canonical FID, KID, MMD, class accuracy."""
