"""The HTTP side of LogoGAN: generate from finished runs, train new ones, and a gallery page (models.serve)."""
