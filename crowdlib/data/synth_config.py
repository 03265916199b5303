"""Scene parameters of the synthetic crowd world: :class:`SceneConfig`, the named presets and seeding.

:func:`crowdlib.data.synthetic.render_scene` draws a scene from a :class:`SceneConfig` (or a preset name resolved by
:func:`resolve_config`); :func:`_rng` derives the per-scene generator from ``(preset name, seed, index)``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

HEAD_ASPECT = 0.9  # head box width / height

SKIN = np.array([[255, 224, 189], [241, 194, 125], [224, 172, 105], [198, 134, 66], [160, 105, 60],
                 [141, 85, 36], [92, 51, 23]], np.float32)
HAIR = np.array([[20, 15, 10], [45, 32, 20], [80, 55, 30], [120, 85, 50], [185, 150, 95], [110, 110, 110],
                 [215, 215, 210], [60, 25, 15]], np.float32)


@dataclass(frozen=True)
class SceneConfig:
    """Parameters of one synthetic scene family (a preset). All sizes are fractions of the image height.

    Attributes:
        name: preset name (part of the image id and of the random stream).
        domain: domain label written to ``meta["domain"]``.
        height, width: default image size in pixels.
        placement: ``"lattice"`` (jittered grid in perspective coordinates: dense crowds), ``"poisson"``
            (independent positions: sparse scenes) or ``"none"`` (no heads).
        spacing_range: lattice spacing in head sizes, sampled log-uniformly per image (``"lattice"`` only).
        count_range: number of heads, sampled log-uniformly per image (``"poisson"`` only).
        density_power: ``"poisson"`` density is proportional to ``size(y) ** -density_power``.
        min_separation: ``"poisson"`` only: heads closer than this many (mean) head sizes are rejected, so
            scattered people do not stand inside each other.
        max_heads: hard cap on the number of heads.
        size_mode: ``"perspective"`` (size linear in the row) or ``"random"`` (log-uniform in ``size_range``,
            independent of the row: face-like images).
        size_range: ``(far, near)`` head size at the horizon row and at the bottom row.
        size_jitter: per-image multiplicative size scale, sampled uniformly in ``[1 - j, 1 + j]``.
        size_noise: per-head log-normal size noise (standard deviation of the log).
        min_head_px: floor on the head size in pixels (applied after scaling to the image height).
        horizon: ``(low, high)`` range of the horizon row as a fraction of the height; heads lie below it.
        layouts: ``((name, probability), ...)`` over ``"uniform"``, ``"clustered"``, ``"street"``.
        empty_prob: probability of cutting 1-3 empty rectangles out of the layout.
        negative_prob: probability that an image has no heads at all.
        body_length: torso length in head sizes (short: shoulders only).
        hat_prob: probability of a hat per head.
        back_prob: probability that a head faces away (hair only).
        turn_max: maximum sideways turn of the face (0 frontal, 1 profile).
        point_jitter: annotation jitter, standard deviation in head sizes.
        max_occlusion: heads whose hidden fraction exceeds this are not annotated.
        distractor_range: ``(min, max)`` number of round head-like distractors.
        backgrounds: background textures to choose from: ``"noise"``, ``"stripes"``, ``"gradient"``,
            ``"facade"``.
        palette: colour style: ``"indoor"`` (warm, dim), ``"street"`` (daylight, grey ground), ``"plain"``.
        haze: strength of the low-contrast haze at the horizon (0 none, 1 full).
        far_blur: Gaussian blur sigma (in pixels at 256 px height) at the horizon, fading to 0 at the bottom.
        blur: global blur sigma range (pixels at 256 px height).
        noise_std: range of the additive Gaussian noise standard deviation (0-255 scale).
        brightness: range of the global brightness factor.
    """

    name: str
    domain: str
    height: int = 256
    width: int = 256
    placement: str = "lattice"
    spacing_range: tuple[float, float] = (0.8, 1.6)
    count_range: tuple[int, int] = (0, 0)
    density_power: float = 2.0
    min_separation: float = 0.0
    max_heads: int = 6000
    size_mode: str = "perspective"
    size_range: tuple[float, float] = (0.02, 0.11)
    size_jitter: float = 0.15
    size_noise: float = 0.08
    min_head_px: float = 3.0
    horizon: tuple[float, float] = (0.0, 0.2)
    layouts: tuple[tuple[str, float], ...] = (("uniform", 0.4), ("clustered", 0.4), ("street", 0.2))
    empty_prob: float = 0.3
    negative_prob: float = 0.0
    body_length: float = 1.0
    hat_prob: float = 0.1
    back_prob: float = 0.25
    turn_max: float = 0.7
    point_jitter: float = 0.04
    max_occlusion: float = 0.8
    distractor_range: tuple[int, int] = (0, 6)
    backgrounds: tuple[str, ...] = ("noise", "stripes", "gradient")
    palette: str = "indoor"
    haze: float = 0.35
    far_blur: float = 0.8
    blur: tuple[float, float] = (0.3, 0.6)
    noise_std: tuple[float, float] = (2.0, 8.0)
    brightness: tuple[float, float] = (0.75, 1.1)

    def __post_init__(self) -> None:
        if self.placement not in ("lattice", "poisson", "none"):
            raise ValueError(f"SceneConfig {self.name!r}: placement must be lattice|poisson|none, "
                             f"got {self.placement!r}")
        if self.size_mode not in ("perspective", "random"):
            raise ValueError(f"SceneConfig {self.name!r}: size_mode must be perspective|random, "
                             f"got {self.size_mode!r}")
        if self.height < 8 or self.width < 8:
            raise ValueError(f"SceneConfig {self.name!r}: image size must be >= 8x8, "
                             f"got {self.height}x{self.width}")
        if not (0 < self.size_range[0] <= self.size_range[1]):
            raise ValueError(f"SceneConfig {self.name!r}: size_range must satisfy 0 < far <= near, "
                             f"got {self.size_range}")
        for lay, _ in self.layouts:
            if lay not in ("uniform", "clustered", "street"):
                raise ValueError(f"SceneConfig {self.name!r}: unknown layout {lay!r}")
        for bg in self.backgrounds:
            if bg not in ("noise", "stripes", "gradient", "facade"):
                raise ValueError(f"SceneConfig {self.name!r}: unknown background {bg!r}")
        if self.palette not in ("indoor", "street", "plain"):
            raise ValueError(f"SceneConfig {self.name!r}: unknown palette {self.palette!r}")


PRESETS: dict[str, SceneConfig] = {
    # dense, ShanghaiTech-A like: packed crowds, small far heads, dim warm colours, haze
    "crowd_a": SceneConfig(
        name="crowd_a", domain="crowd_a", placement="lattice", spacing_range=(0.7, 1.4),
        size_range=(0.018, 0.11), horizon=(0.0, 0.25), body_length=1.0, palette="indoor",
        layouts=(("uniform", 0.4), ("clustered", 0.4), ("street", 0.2)), empty_prob=0.3,
        distractor_range=(0, 6), haze=0.4, far_blur=0.8, hat_prob=0.12),
    # sparse, ShanghaiTech-B like street scenes: few people, larger heads, daylight, facades
    "crowd_b": SceneConfig(
        name="crowd_b", domain="crowd_b", placement="poisson", count_range=(3, 50), density_power=0.5,
        min_separation=0.6,
        size_range=(0.025, 0.12), horizon=(0.25, 0.45), body_length=2.4, palette="street",
        layouts=(("street", 0.5), ("clustered", 0.25), ("uniform", 0.25)), empty_prob=0.2,
        distractor_range=(1, 8), backgrounds=("facade", "gradient", "noise"), haze=0.15, far_blur=0.4,
        brightness=(0.9, 1.2), hat_prob=0.15, back_prob=0.35),
    # Calibrated stand-ins for the paper's datasets (tools/calibrate_synthetic.py; fixed before any test result).
    # ShanghaiTech A train (300 images, ../shared): count mean 541 (q10/50/90 141/378/1142); nearest-neighbour
    # distance / image height q10/50/90 0.007/0.018/0.047 at median size 652 x 1024. sha_like at 640 x 960
    # (100 training images): count mean 586 (208/518/1112), NN / H 0.010/0.018/0.045, heads 9-36 px (median
    # 14.7 px: 1.8 C3 cells). Its counts are less spread than SHA's (fewer images under 200 heads).
    "sha_like": SceneConfig(
        name="sha_like", domain="sha_like", height=640, width=960, placement="lattice", spacing_range=(0.8, 1.5),
        size_range=(0.0135, 0.085), horizon=(0.15, 0.45), body_length=1.0, palette="indoor",
        layouts=(("uniform", 0.4), ("clustered", 0.4), ("street", 0.2)), empty_prob=0.6,
        distractor_range=(0, 6), haze=0.4, far_blur=0.8, hat_prob=0.12),
    # ShanghaiTech B train (400 images, 768 x 1024): count mean 123 (q10/50/90 30/99/261); NN / H
    # 0.007/0.021/0.073. shb_like at 768 x 1024 (40 images): count mean 127 (34/109/264), NN / H
    # 0.011/0.028/0.070 (fewer very close pairs than SHB's groups).
    "shb_like": SceneConfig(
        name="shb_like", domain="shb_like", height=768, width=1024, placement="poisson", count_range=(20, 330),
        density_power=1.5, min_separation=0.5, size_range=(0.008, 0.055), horizon=(0.25, 0.45), body_length=2.4,
        palette="street", layouts=(("street", 0.3), ("clustered", 0.5), ("uniform", 0.2)), empty_prob=0.2,
        distractor_range=(1, 8), backgrounds=("facade", "gradient", "noise"), haze=0.15, far_blur=0.4,
        brightness=(0.9, 1.2), hat_prob=0.15, back_prob=0.35),
    # extremely dense, NWPU / UCF-QNRF like: thousands of tiny heads
    "crowd_dense": SceneConfig(
        name="crowd_dense", domain="crowd_dense", placement="lattice", spacing_range=(0.75, 1.1),
        size_range=(0.008, 0.055), horizon=(0.0, 0.1), body_length=0.8, palette="indoor",
        layouts=(("uniform", 0.6), ("clustered", 0.4)), empty_prob=0.15, distractor_range=(0, 3),
        haze=0.45, far_blur=1.0, hat_prob=0.08),
    # WiderFace-like: few large faces of varied sizes, mostly frontal
    "faces": SceneConfig(
        name="faces", domain="faces", placement="poisson", count_range=(1, 25), density_power=0.0,
        min_separation=0.8,
        size_mode="random", size_range=(0.05, 0.4), horizon=(0.0, 0.1), body_length=1.3, palette="plain",
        layouts=(("uniform", 1.0),), empty_prob=0.0, back_prob=0.05, turn_max=0.6, hat_prob=0.1,
        distractor_range=(0, 4), backgrounds=("gradient", "noise", "stripes", "facade"), haze=0.0,
        far_blur=0.0, blur=(0.2, 0.5), point_jitter=0.03, max_occlusion=0.7),
    # pure negatives: backgrounds and head-like distractors, zero heads (IIM's negative-sample study)
    "negatives": SceneConfig(
        name="negatives", domain="negatives", placement="none", size_range=(0.03, 0.15),
        horizon=(0.2, 0.45), distractor_range=(4, 30), palette="street",
        backgrounds=("noise", "stripes", "gradient", "facade"), haze=0.15, far_blur=0.4),
}


def list_presets() -> list[str]:
    """Names of the built-in presets."""
    return list(PRESETS)


def resolve_config(preset: str | SceneConfig, height: int | None = None, width: int | None = None,
                   **overrides: Any) -> SceneConfig:
    """Return the preset's :class:`SceneConfig` with the image size and ``overrides`` applied.

    Raises:
        ValueError: unknown preset name or unknown override field.
    """
    if isinstance(preset, SceneConfig):
        cfg = preset
    elif isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"preset: unknown synthetic preset {preset!r}; choose from {list_presets()}")
        cfg = PRESETS[preset]
    else:
        raise ValueError(f"preset: expected a preset name or SceneConfig, got {type(preset).__name__}")
    names = {f.name for f in dataclasses.fields(SceneConfig)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ValueError(f"overrides: unknown SceneConfig field(s) {bad}; valid fields: {sorted(names)}")
    if height is not None:
        overrides["height"] = int(height)
    if width is not None:
        overrides["width"] = int(width)
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


def config_hash(cfg: SceneConfig) -> str:
    """A short stable hash of a config (used for cache file names)."""
    d = dataclasses.asdict(cfg)
    return hashlib.sha1(repr(sorted(d.items())).encode()).hexdigest()[:10]


def _rng(name: str, seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([zlib.crc32(name.encode()), int(seed), int(index)]))
