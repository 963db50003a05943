"""Training-time augmentation of whole batches on the device: random crop, flip, rotation, noise.

Each transform draws its randomness from the runner's seeded generator, so a
resumed run sees the same augmented batches as an uninterrupted one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from netc.diagnostics import DataError
from netc.runner.config import AugmentConfig


class Augment:
    """Applies the configured transforms to the first (image or float) input of a batch."""

    def __init__(self, cfg: AugmentConfig, sample_shapes: list[tuple[int, ...]], dtypes: list[torch.dtype]):
        self.crop, self.flip, self.noise, self.rotation = cfg.crop, cfg.flip, cfg.noise, cfg.rotation
        if (self.crop or self.flip or self.rotation) and (len(sample_shapes[0]) != 3):
            raise DataError(f"augment.crop/flip/rotation work on images (channels, height, width), the first input "
                            f"has per-sample shape {tuple(sample_shapes[0])}",
                            hint="remove augment.crop/flip/rotation for non-image inputs")
        if self.rotation and not dtypes[0].is_floating_point:
            raise DataError("augment.rotation needs a float image input", hint="remove augment.rotation")
        if self.noise and not dtypes[0].is_floating_point:
            raise DataError("augment.noise needs a float input, the first input holds integer token ids",
                            hint="remove augment.noise")

    def __bool__(self) -> bool:
        return bool(self.crop or self.flip or self.noise or self.rotation)

    def __call__(self, xs: tuple[torch.Tensor, ...], gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        x = xs[0]
        if self.crop:
            x = self._random_crop(x, gen)
        if self.flip:
            flip = torch.rand(len(x), generator=gen, device=gen.device) < 0.5
            x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
        if self.rotation:
            x = self._rotate(x, gen)
        if self.noise:
            x = x + self.noise * torch.randn(x.shape, generator=gen, device=gen.device, dtype=x.dtype).to(x.device)
        return (x, *xs[1:])

    def _random_crop(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Zero-pad by ``crop`` pixels, then cut each image back to size at its own random offset."""
        n, c, h, w = x.shape
        p = self.crop
        padded = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=gen, device=gen.device).to(x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=gen, device=gen.device).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (n, 1, h, 1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (n, 1, 1, w)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        return padded[batch, chan, rows, cols]

    def _rotate(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Each image turned by its own angle, uniform in [-rotation, rotation] degrees."""
        u = torch.rand(len(x), generator=gen, device=gen.device).to(x.device)
        return rotate(x, (2 * u - 1) * self.rotation)


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) rotated about their centres by ``degrees`` (N,), bilinear, zeros outside."""
    theta = torch.deg2rad(degrees.to(x.device, torch.float32))
    cos, sin, zero = torch.cos(theta), torch.sin(theta), torch.zeros_like(theta)
    h, w = x.shape[-2:]
    # affine_grid maps output to input positions in [-1, 1] per axis: the off-diagonal terms carry the aspect
    # ratio, so that a non-square image turns rigidly
    mat = torch.stack([torch.stack([cos, -sin * h / w, zero], 1), torch.stack([sin * w / h, cos, zero], 1)], 1)
    grid = F.affine_grid(mat.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
