"""Learned highlight restoration: a masked-feature U-Net in the log domain.

The network follows Santos, Ren & Kalantari (2020): it works on log radiance, the
features of the encoder are multiplied by a *valid* mask (1 - saturation mask) so that
clipped content does not pollute them, and the mask is propagated to the next layer by
convolving it with the layer's own weights, ``|W| / (||W||_1 + eps)``. We use one mask
channel per layer (the kernel is ``|W|`` summed over input and output channels, then
normalised) instead of one per feature channel: it keeps the mask update almost free.

Two additions for lighting:

* a *global-context* branch: a small encoder of the whole image, downsampled to 128
  pixels on the long side, pooled to one vector that modulates (FiLM: scale and shift) the
  bottleneck of every tile. A tile that holds a clipped sun then knows how bright the sky
  and the shadows of the whole scene are;
* *panorama awareness*: with ``wrap=True`` every convolution pads columns circularly
  (longitude 0 and 360 degrees are neighbours) and pads rows across the poles (the row
  beyond the zenith is the same row seen from the opposite longitude); otherwise rows and
  columns are replicated.

Output: ``hdr = (1 - M) * linear + M * exp(y)`` where ``y`` is the network's log-radiance
prediction, so pixels with ``M = 0`` keep their linearized values exactly. The network
runs at half resolution internally (pixel unshuffle in, pixel shuffle out), which quarters
the cost and is enough for content that the input does not encode anyway. Images larger
than ``max_side`` are processed at an integer fraction of their size and the predicted
log-increase is upsampled (see :func:`.learned.restore_highlights_learned`, which runs this
network in tiles); tiles without a clipped pixel skip the network entirely.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import WeightsError
from ..weights import WEIGHTS_DIR

WEIGHTS_FILE = WEIGHTS_DIR / "highlight_net.safetensors"
#: Offset inside the log so black pixels stay finite (about 1/3 of an sRGB code value 1).
LOG_EPS = 1e-4
#: The network's input/output side must be a multiple of this (pixel unshuffle + 3 poolings).
SIZE_MULTIPLE = 16
#: Long side of the downsampled whole image the global-context branch sees.
GLOBAL_SIZE = 128
#: Upper bound on the predicted log radiance (e^30 ~ 1e13 x the clip level): keeps exp finite.
MAX_LOG = 30.0
#: Images with a shorter long side are enlarged for the network (see restore_highlights_learned).
MIN_SIDE = 512
DEFAULT_CHANNELS = (24, 48, 80, 128)
GLOBAL_DIM = 96


def to_log(linear: torch.Tensor) -> torch.Tensor:
    """Log radiance used by the network: ``log(max(x, 0) + LOG_EPS)``."""
    return torch.log(linear.clamp_min(0.0) + LOG_EPS)


# ----------------------------------------------------------------------------- padding


def pad_image(x: torch.Tensor, p: int, wrap: bool) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` by ``p`` on every side.

    ``wrap=False``: replicate. ``wrap=True`` (the tensor is a whole equirect panorama):
    columns wrap around; rows beyond the top/bottom are taken across the pole, i.e. the
    mirrored rows shifted by half the width (requires an even width, else replicate).
    """
    if p == 0:
        return x
    if not wrap:
        return F.pad(x, (p, p, p, p), mode="replicate")
    h, w = x.shape[-2:]
    if w % 2 == 0 and h > p:
        top = torch.roll(x[..., 1:p + 1, :].flip(-2), w // 2, dims=-1)
        bottom = torch.roll(x[..., h - p - 1:h - 1, :].flip(-2), w // 2, dims=-1)
        x = torch.cat([top, x, bottom], dim=-2)
    else:
        x = F.pad(x, (0, 0, p, p), mode="replicate")
    return torch.cat([x[..., -p:], x, x[..., :p]], dim=-1)


class Conv(nn.Module):
    """3x3 convolution with explicit (replicate or panorama) padding."""

    def __init__(self, cin: int, cout: int, k: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=0)
        self.p = k // 2

    def forward(self, x: torch.Tensor, wrap: bool) -> torch.Tensor:
        return self.conv(pad_image(x, self.p, wrap))


class MaskedConv(Conv):
    """Masked-feature convolution (Santos et al. 2020).

    ``forward(x, valid)`` returns ``conv(x * valid)`` and the updated valid mask
    ``conv(valid, |W| / (||W||_1 + eps))`` (one mask channel; see module doc).
    """

    def forward(self, x: torch.Tensor, valid: torch.Tensor, wrap: bool) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(pad_image(x * valid, self.p, wrap))
        k = self.conv.weight.abs().sum(dim=(0, 1), keepdim=True)
        k = k / (k.sum() + 1e-8)
        v = F.conv2d(pad_image(valid, self.p, wrap), k.detach())
        return y, v.clamp(0.0, 1.0)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


# ----------------------------------------------------------------------------- model


class GlobalEncoder(nn.Module):
    """Whole-image context: ``(B, 4, h, w)`` (log RGB + mask, long side ~128) -> ``(B, dim)``."""

    def __init__(self, dim: int = GLOBAL_DIM):
        super().__init__()
        chans = (4, 16, 32, 64, dim)
        self.convs = nn.ModuleList(Conv(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.out = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor, wrap: bool) -> torch.Tensor:
        for conv in self.convs:
            x = _act(conv(x, wrap))
            if min(x.shape[-2:]) >= 2:
                x = F.avg_pool2d(x, 2, ceil_mode=True)
        pooled = torch.cat([x.mean(dim=(-2, -1)), x.amax(dim=(-2, -1))], dim=1)
        return _act(self.out(pooled))


class HighlightNet(nn.Module):
    """Masked-feature U-Net predicting log radiance ``(B, 3, H, W)``.

    Inputs of :meth:`forward`: ``linear`` ``(B, 3, H, W)`` relative radiance (clip level
    1, >= 0), ``mask`` ``(B, 1, H, W)`` saturation mask in [0, 1], ``context`` ``(B, GLOBAL_DIM)``
    from :meth:`context` (of the whole image). ``H`` and ``W`` must be multiples of 16.
    """

    def __init__(self, *, channels: tuple[int, ...] = DEFAULT_CHANNELS, global_dim: int = GLOBAL_DIM):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.channels = tuple(channels)
        self.global_encoder = GlobalEncoder(global_dim)
        self.enc = nn.ModuleList([
            MaskedConv(16, c1), MaskedConv(c1, c1),
            MaskedConv(c1, c2), MaskedConv(c2, c2),
            MaskedConv(c2, c3), MaskedConv(c3, c3),
            MaskedConv(c3, c4), MaskedConv(c4, c4),
        ])
        self.film = nn.Linear(global_dim, 2 * c4)
        self.bottleneck = Conv(c4, c4)
        self.fuse = nn.ModuleList([nn.Conv2d(c4 + c3, c3, 1), nn.Conv2d(c3 + c2, c2, 1), nn.Conv2d(c2 + c1, c1, 1)])
        self.dec = nn.ModuleList([Conv(c3, c3), Conv(c2, c2), Conv(c1, c1)])
        self.head = Conv(c1, 12)
        # Start as "the clipped region is a bit brighter than the clip level" rather than noise.
        nn.init.zeros_(self.head.conv.weight)
        nn.init.constant_(self.head.conv.bias, 0.5)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    @staticmethod
    def global_input(linear: torch.Tensor, mask: torch.Tensor, size: int = GLOBAL_SIZE) -> torch.Tensor:
        """Whole image -> ``(B, 4, h, w)`` with long side ``size`` (area average in linear, then log)."""
        h, w = linear.shape[-2:]
        s = size / max(h, w)
        gh, gw = max(1, round(h * s)), max(1, round(w * s))
        if (gh, gw) != (h, w):
            linear = F.adaptive_avg_pool2d(linear, (gh, gw))
            mask = F.adaptive_avg_pool2d(mask, (gh, gw))
        return torch.cat([to_log(linear) / 4.0, mask], dim=1)

    def context(self, linear: torch.Tensor, mask: torch.Tensor, wrap: bool) -> torch.Tensor:
        """Global-context vector ``(B, GLOBAL_DIM)`` of whole images."""
        return self.global_encoder(self.global_input(linear, mask), wrap)

    def forward(self, linear: torch.Tensor, mask: torch.Tensor, context: torch.Tensor, wrap: bool = False) -> torch.Tensor:
        h, w = linear.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"HighlightNet input must be a multiple of {SIZE_MULTIPLE}, got {h}x{w}")
        xlog = to_log(linear)
        valid = 1.0 - mask
        x = torch.cat([xlog / 4.0 * valid, mask], dim=1)
        x = F.pixel_unshuffle(x, 2)
        v = F.avg_pool2d(valid, 2)
        skips = []
        for level in range(4):
            if level:
                x = F.avg_pool2d(x, 2)
                v = F.avg_pool2d(v, 2)
            x, v = self.enc[2 * level](x, v, wrap)
            x = _act(x)
            x, v = self.enc[2 * level + 1](x, v, wrap)
            x = _act(x)
            skips.append(x)
        gamma, beta = self.film(context).chunk(2, dim=1)
        x = x * (1.0 + gamma[..., None, None]) + beta[..., None, None]
        x = _act(self.bottleneck(x, wrap))
        for i in range(3):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = _act(self.fuse[i](torch.cat([x, skips[2 - i]], dim=1)))
            x = _act(self.dec[i](x, wrap))
        y = F.pixel_shuffle(self.head(x, wrap), 2)
        # Predict the increase over the input's log radiance: the clipped value is a lower bound.
        return (xlog + y).clamp(max=MAX_LOG)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- weights


def save_weights(model: HighlightNet, path: str | Path, metadata: dict | None = None) -> None:
    """Write the model's state dict as safetensors (float32) with the channel config."""
    from safetensors.torch import save_file

    meta = {"channels": ",".join(str(c) for c in model.channels), "arch": "HighlightNet"}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def model_from_state_dict(state: dict[str, torch.Tensor]) -> HighlightNet:
    """Build a :class:`HighlightNet` whose channel widths are inferred from tensor shapes; strict load."""
    try:
        c1 = state["enc.0.conv.weight"].shape[0]
        c2 = state["enc.2.conv.weight"].shape[0]
        c3 = state["enc.4.conv.weight"].shape[0]
        c4 = state["enc.6.conv.weight"].shape[0]
        g = state["global_encoder.out.weight"].shape[0]
        model = HighlightNet(channels=(c1, c2, c3, c4), global_dim=g)
        model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError, IndexError) as exc:
        raise WeightsError(f"weights do not match the highlight network: {str(exc).splitlines()[0]}") from None
    return model.eval()


_CACHE: dict[tuple[str, str, str], HighlightNet] = {}


def load_model(weights: str | Path | None = None, device: str = "cpu") -> HighlightNet:
    """Load (and cache) the trained network; the file must pass the manifest check."""
    from safetensors.torch import load_file

    from ..weights import verify_weights_file

    path = Path(weights) if weights is not None else WEIGHTS_FILE
    # Verified on every call (hashing a few MB is cheap): a file changed on disk is never
    # served from the cache.
    entry = verify_weights_file(path)
    key = (str(path.resolve()), str(entry.get("sha256")), device)
    if key not in _CACHE:
        model = model_from_state_dict(load_file(str(path)))
        _CACHE.clear()  # one model at a time: it is the memory that matters on small machines
        _CACHE[key] = model.to(device)
    return _CACHE[key]
