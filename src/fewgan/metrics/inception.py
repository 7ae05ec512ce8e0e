"""The Inception-v3 network that FID is defined on, written in plain torch.

FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017) is defined on the features of one particular network: the
TensorFlow graph ``inception-2015-12-05`` (Szegedy et al., "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016). pytorch-fid and torch-fidelity ported that
graph to torch; their ports differ from torchvision's ``inception_v3`` in three places, which
this module reproduces:

* the average pool of the pool branch in blocks A (``Mixed_5b..5d``), C (``Mixed_6b..6e``)
  and the first E block (``Mixed_7b``) ignores the zero padding (TensorFlow's ``SAME``
  average pool; ``count_include_pad=False``);
* the last E block (``Mixed_7c``) uses a *max* pool in its pool branch;
* the classifier has 1008 outputs.

Parameter and buffer names follow torchvision (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch_pool.bn.running_var``, ``fc.weight``, ...), so both community files,
``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid) and
``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity), load strictly and unchanged;
the stem of torchvision's ImageNet weights (``Conv2d_1a_3x3`` .. ``Conv2d_4a_3x3``) has the same
names too, which SIFID uses.

The network is a pure module: no file access, no resizing, no normalisation. It takes a
``[N, 3, H, W]`` float tensor already normalised to the TensorFlow input range (about [-1, 1]),
normally at 299 x 299; :mod:`fewgan.metrics.features` does the rest.

Taps (what FID tools call "dims"):

===========  =======================================================  ==============
tap          where                                                    pooled vector
===========  =======================================================  ==============
``64``       after the first max pool (``Conv2d_2b_3x3`` -> maxpool)  [N, 64]
``192``      after the second max pool (``Conv2d_4a_3x3`` -> maxpool) [N, 192]
``768``      after ``Mixed_6e``                                       [N, 768]
``2048``     after ``Mixed_7c`` and the global average pool (pool3)   [N, 2048]
``logits``   ``fc`` on the 2048 pool (1008 classes)                   [N, 1008]
===========  =======================================================  ==============

The 64/192/768 vectors are spatial means of the maps, as pytorch-fid and torch-fidelity compute
them. SIFID instead taps the maps *before* the first and second max pool
(:meth:`InceptionV3FID.stem_maps`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TAPS", "STEM_LAYERS", "BasicConv2d", "InceptionV3FID", "tap_name"]

#: The feature taps of the FID network, in network order.
TAPS = ("64", "192", "768", "2048", "logits")

#: Names of the stem convolutions (before ``Mixed_5b``); SIFID loads only these.
STEM_LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")

_ALIASES = {"pool3": "2048", "pool_3": "2048", "2048": "2048", "768": "768", "192": "192",
            "64": "64", "logits": "logits"}


def tap_name(layer) -> str:
    """Canonical tap name for ``layer`` (``64``, ``"192"``, ``"pool3"`` -> ``"2048"``, ...)."""
    key = str(layer).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown Inception tap {layer!r}; expected one of 64, 192, 768, 2048 (pool3), logits")
    return _ALIASES[key]


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001, as in the TF graph), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's SAME average pool divides by the number of real (unpadded) inputs.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):
    """35 x 35 block (``Mixed_5b``, ``5c``, ``5d``): 1x1, 5x5, double 3x3 and pool branches."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([a, b, c, d], dim=1)


class _BlockB(nn.Module):
    """Grid reduction 35 -> 17 (``Mixed_6a``)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], dim=1)


class _BlockC(nn.Module):
    """17 x 17 block with factorised 7x7 convolutions (``Mixed_6b`` .. ``6e``)."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = layer(c)
        d = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([a, b, c, d], dim=1)


class _BlockD(nn.Module):
    """Grid reduction 17 -> 8 (``Mixed_7a``)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = layer(b)
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], dim=1)


class _BlockE(nn.Module):
    """8 x 8 block with expanded 1x3 / 3x1 branches (``Mixed_7b``, ``Mixed_7c``).

    ``pool='avg'`` (TF average pool ignoring padding) in ``Mixed_7b``; ``pool='max'`` in
    ``Mixed_7c``, as in the 2015-12-05 graph.
    """

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], dim=1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], dim=1)
        if self.pool == "avg":
            pooled = _tf_avg_pool(x)
        else:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        d = self.branch_pool(pooled)
        return torch.cat([a, b, c, d], dim=1)


class InceptionV3FID(nn.Module):
    """Inception-v3 as in the TF ``inception-2015-12-05`` graph that FID is defined on.

    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016;
    the FID variant of Heusel et al., NeurIPS 2017, as ported by pytorch-fid (Seitzer) and
    torch-fidelity (Obukhov et al.). About 5.7 GMAC per 299 x 299 image; 23.9 M parameters.

    Call :meth:`forward` with ``x`` of shape ``[N, 3, H, W]`` (H, W >= 75; 299 for FID),
    normalised to the TF input range ``(pixel - 128) / 128``; it returns a dict of the requested
    taps as pooled ``[N, D]`` tensors. The module is put in eval mode by its users (batch norm
    uses the stored statistics).
    """

    def __init__(self, num_classes: int = 1008):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = _BlockA(192, pool_features=32)
        self.Mixed_5c = _BlockA(256, pool_features=64)
        self.Mixed_5d = _BlockA(288, pool_features=64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, channels_7x7=128)
        self.Mixed_6c = _BlockC(768, channels_7x7=160)
        self.Mixed_6d = _BlockC(768, channels_7x7=160)
        self.Mixed_6e = _BlockC(768, channels_7x7=192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, pool="avg")
        self.Mixed_7c = _BlockE(2048, pool="max")
        self.fc = nn.Linear(2048, num_classes)

    # ------------------------------------------------------------------ taps
    def stem_maps(self, x: torch.Tensor, taps=("64", "192")) -> dict[str, torch.Tensor]:
        """Feature maps *before* the first (``"64"``) and second (``"192"``) max pool.

        These are the SIFID taps (Shaham et al., ICCV 2019): ``"64"`` is the output of
        ``Conv2d_2b_3x3``, ``[N, 64, h, w]``; ``"192"`` the output of ``Conv2d_4a_3x3``,
        ``[N, 192, h', w']``. Any input size with H, W >= 7 (``"64"``) or >= 19 (``"192"``).
        """
        taps = {tap_name(t) for t in taps}
        if not taps <= {"64", "192"}:
            raise ValueError(f"stem taps are '64' and '192', not {sorted(taps)}")
        _check_input(x, 7 if taps == {"64"} else 19)
        out = {}
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        out["64"] = x
        if "192" in taps:
            x = F.max_pool2d(x, kernel_size=3, stride=2)
            out["192"] = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        return {k: v for k, v in out.items() if k in taps}

    def forward_maps(self, x: torch.Tensor, taps=("2048",)) -> dict[str, torch.Tensor]:
        """The maps at the FID taps (after the pools), unpooled; the network stops at the last one.

        Returns ``{"64": [N, 64, 73, 73], "192": [N, 192, 35, 35], "768": [N, 768, 17, 17],
        "2048": [N, 2048, 1, 1], "logits": [N, 1008]}`` (sizes for 299 px input), only the keys asked for.
        """
        want = [tap_name(t) for t in taps]
        if not want:
            raise ValueError("ask for at least one tap")
        _check_input(x, 75)
        last = max(TAPS.index(t) for t in want)
        out = {}
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        out["64"] = x
        if last >= 1:
            x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
            x = F.max_pool2d(x, kernel_size=3, stride=2)
            out["192"] = x
        if last >= 2:
            for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                          self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
                x = block(x)
            out["768"] = x
        if last >= 3:
            for block in (self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
                x = block(x)
            x = F.adaptive_avg_pool2d(x, (1, 1))
            out["2048"] = x
        if last >= 4:
            out["logits"] = self.fc(torch.flatten(x, 1))
        return {t: out[t] for t in want}

    def forward(self, x: torch.Tensor, taps=("2048",)) -> dict[str, torch.Tensor]:
        """Pooled features ``{tap: [N, D]}`` for ``x`` ``[N, 3, H, W]`` in the TF input range."""
        maps = self.forward_maps(x, taps)
        return {t: (m if m.ndim == 2 else m.mean(dim=(2, 3))) for t, m in maps.items()}


def _check_input(x: torch.Tensor, min_side: int) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"Inception expects [N, 3, H, W], got {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_side:
        raise ValueError(f"Inception input {tuple(x.shape[-2:])} is smaller than {min_side} px on a side")
