"""Stage 2: turn folders of collected images into clean, documented ``.npz`` datasets."""
