"""Model blocks both stages share: ActNorm, the patch discriminator, spectral norm, the GAN loss interface, LPIPS
as a training loss, and what the project's state dicts look like."""
