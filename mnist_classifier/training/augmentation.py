"""Random changes to whole training batches, on the batch's device: stroke width (thinner and thicker), an
affine warp (rotation, translation, scale, shear), optionally elastic distortion, and low resolution (an image
reduced to a few pixels a side and enlarged back, as a small scan or an 8x8 digit reaches the model), as
configured in ``data.augmentation``. One ``grid_sample`` applies the warp to the whole batch: no per-image work, no PIL.

The random numbers come from torch's global generator of the batch's device. Checkpoints save that generator
and resuming restores it, so an augmented run that is interrupted and resumed is bit-identical to one that
was not.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Each image draws its own values, uniformly, from these ranges (0: that change is off)."""

    rotation: float = 0.0      # degrees, in [-rotation, rotation]
    translation: float = 0.0   # share of the image's side, in [-translation, translation], per axis
    scale: float = 0.0         # zoom factor in [1 - scale, 1 + scale]
    shear: float = 0.0         # degrees, in [-shear, shear]
    stroke_width: float = 0.0  # in [-1, 1] x this: towards one pixel thinner (< 0) or thicker (> 0) strokes
    elastic_alpha: float = 0.0  # pixels of elastic displacement, at most; 0: no elastic distortion
    elastic_sigma: float = 4.0  # pixels: how smooth the elastic displacement field is
    low_resolution: float = 0.0  # share of the images reduced to 7-14 pixels a side, then enlarged back

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Augmentation | None:
        """The configured augmentation, or ``None`` when there is none or every change is off."""
        if not config:
            return None
        augmentation = cls(**{f.name: float(config[f.name]) for f in fields(cls) if f.name in config})
        active = ("rotation", "translation", "scale", "shear", "stroke_width", "elastic_alpha", "low_resolution")
        return augmentation if any(getattr(augmentation, name) for name in active) else None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: a float batch ``[N, 1, H, W]`` of light ink on black (any value range); returns a new
        batch of the same shape and range."""
        if self.stroke_width:
            images = self._stroke_width(images)
        if self.rotation or self.translation or self.scale or self.shear or self.elastic_alpha:
            images = self._warp(images)
        if self.low_resolution:
            images = self._low_resolution(images)
        return images

    def _low_resolution(self, images: torch.Tensor) -> torch.Tensor:
        """A ``low_resolution`` share of the batch reduced to one size (7 to 14 pixels a side, drawn per batch from
        the CPU's generator, which checkpoints save too) by area, and enlarged back bicubically: the blur of a
        digit a few pixels tall."""
        chosen = torch.rand(len(images), device=images.device) < self.low_resolution
        side = int(torch.randint(7, 15, (1,)))  # drawn on the CPU: reading it from a GPU would wait for the GPU
        size = images.shape[-2:]
        small = F.interpolate(images, size=(side, side), mode="area")
        blurred = F.interpolate(small, size=size, mode="bicubic", align_corners=False)
        low, high = images.amin(dim=(1, 2, 3), keepdim=True), images.amax(dim=(1, 2, 3), keepdim=True)
        return torch.where(chosen.view(-1, 1, 1, 1), torch.maximum(torch.minimum(blurred, high), low), images)

    def _uniform(self, n: int, bound: float, device: torch.device) -> torch.Tensor:
        return (torch.rand(n, device=device) * 2 - 1) * bound

    def _stroke_width(self, images: torch.Tensor) -> torch.Tensor:
        """Blend each image with its 3x3 dilation (thicker) or erosion (thinner), by its own amount."""
        amount = self._uniform(len(images), self.stroke_width, images.device).view(-1, 1, 1, 1)
        thicker = F.max_pool2d(images, 3, stride=1, padding=1)
        thinner = -F.max_pool2d(-images, 3, stride=1, padding=1)
        target = torch.where(amount > 0, thicker, thinner)
        return images + amount.abs() * (target - images)

    def _warp(self, images: torch.Tensor) -> torch.Tensor:
        n, _, height, width = images.shape
        device = images.device
        angle = torch.deg2rad(self._uniform(n, self.rotation, device))
        shear = torch.deg2rad(self._uniform(n, self.shear, device))
        zoom = 1 + self._uniform(n, self.scale, device)
        shift = torch.stack([self._uniform(n, 2 * self.translation, device) for _ in range(2)], dim=1)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # Where each output pixel reads from: rotate, shear, then zoom (in affine_grid's [-1, 1] coordinates).
        theta = torch.stack([torch.stack([cos, -sin + cos * torch.tan(shear), shift[:, 0]], dim=1),
                             torch.stack([sin, cos + sin * torch.tan(shear), shift[:, 1]], dim=1)], dim=1)
        theta[:, :, :2] /= zoom.view(-1, 1, 1)
        grid = F.affine_grid(theta, [n, 1, height, width], align_corners=False)
        if self.elastic_alpha:
            grid = grid + self._elastic_field(n, height, width, device)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _elastic_field(self, n: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        """Smooth random displacements of up to ``elastic_alpha`` pixels, as a ``[N, H, W, 2]`` grid offset:
        uniform noise on a coarse grid, a point every ``2 * elastic_sigma`` pixels, interpolated bicubically (as
        smooth as Simard et al.'s Gaussian-blurred noise, at a fraction of the cost of a wide blur)."""
        coarse = (max(2, round(height / (2 * self.elastic_sigma))), max(2, round(width / (2 * self.elastic_sigma))))
        field = F.interpolate(torch.rand(n, 2, *coarse, device=device) * 2 - 1, size=(height, width),
                              mode="bicubic", align_corners=False).clamp_(-1, 1)  # bicubic overshoots a little
        scale = torch.tensor([2 / width, 2 / height], device=device) * self.elastic_alpha
        return field.permute(0, 2, 3, 1) * scale
