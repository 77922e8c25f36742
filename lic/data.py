"""Images: the bundled default photo set, robust loading to 8-bit RGB, and training patches.

The default set is made of real photographs that ship inside pip packages (scikit-image,
scikit-learn, matplotlib, PyWavelets, mahotas, pygame), split into a fixed train set and a
held-out test set (the split is measured: reports/notebook/, "The bundled split"). Any folder
of images (Kodak, CLIC, TecNick, DIV2K, ...) can be used instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lic.config import DATA_DIR
from lic.errors import LicError
from lic.fileio import atomic_write

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"}
DEFAULT_MAX_PIXELS = 16_777_216  # 4096 x 4096; override with LIC_MAX_PIXELS

# (package, path inside the package, name, split). Stereo pairs stay in one split.
DEFAULT_SOURCES: tuple[tuple[str, str, str, str], ...] = (
    ("skimage", "data/astronaut.png", "astronaut", "train"),
    ("skimage", "data/chelsea.png", "chelsea", "train"),
    ("skimage", "data/coffee.png", "coffee", "test"),
    ("skimage", "data/motorcycle_left.png", "motorcycle_left", "train"),
    ("skimage", "data/motorcycle_right.png", "motorcycle_right", "train"),
    ("skimage", "data/hubble_deep_field.jpg", "hubble_deep_field", "train"),
    ("skimage", "data/ihc.png", "ihc", "train"),
    ("skimage", "data/rocket.jpg", "rocket", "test"),
    ("sklearn", "datasets/images/china.jpg", "china", "test"),
    ("sklearn", "datasets/images/flower.jpg", "flower", "train"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "grace_hopper", "train"),
    # grayscale photographs, stored as RGB: more scenes and textures for the transforms to learn
    ("skimage", "data/camera.png", "camera", "train"),
    ("skimage", "data/brick.png", "brick", "train"),
    ("skimage", "data/grass.png", "grass", "train"),
    ("skimage", "data/gravel.png", "gravel", "train"),
    ("skimage", "data/coins.png", "coins", "train"),
    ("skimage", "data/moon.png", "moon", "train"),
    ("skimage", "data/clock_motion.png", "clock_motion", "train"),
    # held-out photographs from three small packages (PyWavelets' arrays are 8-bit grayscale)
    ("pywt", "data/aero.npz", "aero", "test"),
    ("pywt", "data/ascent.npz", "ascent", "test"),
    ("mahotas", "demos/data/luispedro.jpg", "luispedro", "test"),
    ("pygame", "docs/generated/_images/camera_rgb.jpg", "pygame_camera", "test"),
)


def max_pixels() -> int:
    """The largest image (in pixels) that is loaded; ``LIC_MAX_PIXELS`` overrides it."""
    value = os.environ.get("LIC_MAX_PIXELS", str(DEFAULT_MAX_PIXELS))
    try:
        return int(value)
    except ValueError:
        raise LicError(f"LIC_MAX_PIXELS must be an integer, got {value!r}") from None


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LicError(f"package {package!r} is not installed; it provides default images")
    return Path(next(iter(spec.submodule_search_locations)))


def write_bundled(split: str, folder: Path) -> Path:
    """Write the bundled photos of ``split`` (``train`` or ``test``) as PNG into ``folder``; idempotent.

    A photo of the other split found there (it moved since an earlier call) is removed.
    """
    if split not in ("train", "test"):
        raise LicError(f"the bundled photos split into train and test, not {split!r}")
    folder = Path(folder)
    for package, rel, name, where in DEFAULT_SOURCES:
        out = folder / f"{name}.png"
        if where != split:
            out.unlink(missing_ok=True)
            continue
        if out.exists():
            continue
        src = _package_dir(package) / rel
        rgb = _load_array(src) if src.suffix == ".npz" else load_image(src)[0]
        atomic_write(out, lambda tmp: Image.fromarray(rgb).save(tmp, format="PNG"))
    return folder


def prepare_default_dataset(root: Path = DATA_DIR) -> Path:
    """Write the bundled photos as PNG under ``root/bundled-train`` and ``root/bundled-test`` (the
    pipeline's data sets of those names); idempotent."""
    for split in ("train", "test"):
        write_bundled(split, Path(root) / f"bundled-{split}")
    return Path(root)


def _load_array(path: Path) -> np.ndarray:
    """An 8-bit grayscale photo stored as the ``data`` array of an ``.npz`` file, as RGB."""
    gray = np.load(path)["data"]
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise LicError(f"{path}: expected an 8-bit grayscale array, got {gray.dtype} {gray.shape}")
    return np.repeat(gray[..., None], 3, axis=2)


def split_sizes() -> tuple[int, int]:
    """Number of bundled photos in the train and the test split."""
    n_test = sum(split == "test" for *_, split in DEFAULT_SOURCES)
    return len(DEFAULT_SOURCES) - n_test, n_test


def default_images(split: str) -> Path:
    """The folder of the bundled ``train`` or ``test`` split, made on first use where the pipeline's
    data set ``bundled-<split>`` lies (``artifacts/data/bundled-<split>``)."""
    return write_bundled(split, DATA_DIR / f"bundled-{split}")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LicError(f"{folder}: no such folder of images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise LicError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _to_rgb8(img: Image.Image) -> tuple[np.ndarray, list[str]]:
    notes: list[str] = []
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy(), notes
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img).astype(np.float64)
        scale = 257.0 if mode != "F" and arr.max(initial=0) > 255 else 1.0
        gray = np.clip(np.round(arr / scale), 0, 255).astype(np.uint8)
        notes.append(f"{mode} (high bit depth grayscale) reduced to 8-bit RGB")
        return np.repeat(gray[..., None], 3, axis=2), notes
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        notes.append(f"{mode} image: alpha channel dropped")
    elif mode == "CMYK":
        notes.append("CMYK converted to RGB")
    else:
        notes.append(f"{mode} converted to RGB")
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy(), notes


def load_image(path: Path, limit: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Read any image as an ``HxWx3`` uint8 array, plus notes on what was converted.

    Raises ``LicError`` for a missing, empty, truncated or non-image file, or one larger
    than ``limit`` pixels (checked from the header, before decoding).
    """
    path = Path(path)
    limit = max_pixels() if limit is None else limit
    if path.is_dir():
        raise LicError(f"{path}: a folder, not an image (lic eval --images codes a folder)")
    if not path.is_file():
        raise LicError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise LicError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > limit:
                    raise LicError(
                        f"{path}: {w}x{h} is {w * h} pixels, above the limit of {limit} "
                        "(set LIC_MAX_PIXELS to raise it)"
                    )
                if w < 1 or h < 1:
                    raise LicError(f"{path}: image has no pixels")
                img.load()
                fmt = img.format
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)
                rgb, notes = _to_rgb8(img)
    except LicError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise LicError(f"{path}: not a readable image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise LicError(f"{path}: cannot decode image ({exc})") from None
    suffix_format = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(path.suffix.lower())
    if suffix_format and fmt and fmt != suffix_format:
        notes.append(f"file is {fmt} although named {path.suffix}")
    return rgb, notes


def folder_fingerprint(files: list[Path]) -> str:
    """SHA-256 over the names and bytes of ``files``: identifies a set of source images."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``HxWx3`` uint8 to a ``1x3xHxW`` float tensor in [0, 1]."""
    rgb = rgb if rgb.flags.writeable else rgb.copy()  # np.asarray of a PIL image is read-only
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``1x3xHxW`` float in [0, 1] to ``HxWx3`` uint8, rounding as an 8-bit image is stored."""
    return x.detach().squeeze(0).clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


@dataclass
class PatchSampler:
    """Draws random ``patch_size`` crops with random horizontal flips from in-memory images.

    With ``min_scale < 1`` each crop first covers ``patch_size / s`` pixels, ``s ~ U(min_scale, 1)``
    (``s`` raised where the image is too small), and is downscaled to ``patch_size`` with
    antialiasing: the same photos seen at other scales. All randomness comes from ``generator``,
    so a run is reproducible and resumable.
    """

    images: list[torch.Tensor]  # uint8, 3xHxW, each at least patch_size on both sides
    patch_size: int
    batch_size: int
    min_scale: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.min_scale <= 1:
            raise LicError(f"min_scale must lie in (0, 1], got {self.min_scale}")

    @classmethod
    def from_folder(cls, folder: Path, patch_size: int, batch_size: int, min_scale: float = 1.0) -> "PatchSampler":
        images = []
        for path in list_images(folder):
            rgb, notes = load_image(path)
            for note in notes:
                warnings.warn(f"{path.name}: {note}", stacklevel=2)
            t = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
            pad_h, pad_w = max(0, patch_size - t.shape[1]), max(0, patch_size - t.shape[2])
            if pad_h or pad_w:
                t = torch.nn.functional.pad(t[None].float(), (0, pad_w, 0, pad_h), mode="replicate")[0].to(torch.uint8)
            images.append(t)
        return cls(images, patch_size, batch_size, min_scale)

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        """One batch, ``Bx3xPxP`` float in [0, 1]."""
        p = self.patch_size
        out = torch.empty(self.batch_size, 3, p, p)
        for b in range(self.batch_size):
            img = self.images[int(torch.randint(len(self.images), (1,), generator=generator))]
            side = p
            if self.min_scale < 1:
                lo = max(self.min_scale, p / min(img.shape[1], img.shape[2]))
                side = min(int(p / (lo + (1 - lo) * float(torch.rand(1, generator=generator)))), *img.shape[1:])
            top = int(torch.randint(img.shape[1] - side + 1, (1,), generator=generator))
            left = int(torch.randint(img.shape[2] - side + 1, (1,), generator=generator))
            crop = img[:, top : top + side, left : left + side].float()
            if side != p:
                crop = torch.nn.functional.interpolate(crop[None], size=(p, p), mode="bilinear", antialias=True,
                                                       align_corners=False)[0].round_().clamp_(0, 255)
            if bool(torch.rand(1, generator=generator) < 0.5):
                crop = crop.flip(-1)
            out[b] = crop
        return out.div_(255.0)
