"""The data sets lic knows by name: their files with published sizes and SHA-256, which archive
members are images, and what they are; ``LIC_DATA_REGISTRY`` adds more (:func:`registry`). Fetching
them is :mod:`lic.download`'s; naming them is all that a pipeline's other stages need.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from lic.errors import LicError


@dataclass(frozen=True)
class Remote:
    """One file to download: ``sha256`` and ``size`` as published (``None`` where none is)."""

    url: str
    sha256: str | None
    size: int | None = None

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").removesuffix("/download").rsplit("/", 1)[-1]


    def at(self, mirror: str | None) -> "Remote":
        """The same file from ``mirror`` (a base URL), if given."""
        return Remote(f"{mirror.rstrip('/')}/{self.filename}", self.sha256, self.size) if mirror else self


@dataclass(frozen=True)
class DataSet:
    """A standard set: its files, which archive members are its images, and where it comes from;
    ``bundled``: a split of the photos that ship in pip packages (:mod:`lic.data`), with no download."""

    files: tuple[Remote, ...] = ()
    members: str = "*"  # glob over archive member paths; plain image files are taken as they are
    use: str = "evaluation"
    source: str = ""
    bundled: str | None = None


def _kodak() -> tuple[Remote, ...]:
    # http://r0k.us/graphics/kodak/ (Kodak Lossless True Color Image Suite, PhotoCD PCD0992).
    # SHA-256 and sizes: the per-file manifests that public Kodak downloaders and codec test suites
    # publish (e.g. `sha256sum -c` lists of the r0k.us PNGs); kodim01 and kodim24 agree across several.
    digests = """
    a56e27cbf5f843c048b6af1d6e090760e9c92fadba88b7dee0205918a37523bd 736501
    4f4b74a79237e311d72cad958237b5f7088d8bce1c82305ebefe1a70e3022dfd 617995
    e25ca1ff2f0c0cb5fdfd5f9b0a0bb21ac4c3de3c84a67f35b09a85d3306249db 502888
    e3b946107c5d3441c022f678d0c3caf1e224d81b1604ba840a4f88e562de61aa 637432
    10349e963c5c813d327852f82c1795fa4148d69fedffc4c589bee458e3ac3d53 785610
    363510303b715d4cbc384e1ce227e466b613a09e1b71ae985882bf8e7fbd9b18 618959
    b77d3f006f42414bb242222e0482e750c0fb9e5ee8d4bed2f6f11c5605fe54a4 566322
    ba23983c76b4832ee0e8af0592664756841a16779acd69f792e268fb6d13d6e7 788470
    6a4361c2fc194feb4edaa9f9a4a0620fb9943e460ac7fdf037fb0f6dd6607a7d 582899
    9dfb70f5867c29ff9ed6313683f19b3d867849e40fbc0c4c54a4a89df341cf23 593463
    7936814b58b5387fce2e4e2488b4ec830dadd95fa9520f358ddb30990b50f2b6 621023
    d78c37c2f04f23761ed2367dd77e2db584ddd4c3950833fecf89f199a8126980 531024
    bc34a3ce58dea09dce1704c997171602de90cb34d0c8503a988b77f473d39b08 822712
    55a94550ff18f3246c4074fd32b77b0c74447c26b6ad274d564d999c0450ba6e 692201
    7538cbb80cb9103606c48b806eae57d56c885c7f90b9b3be70a41160f9cbb683 612582
    a89c7268ccd4718ba424a99fc4643c572cf692ca6eae887185ceb4e9f11d2e54 534247
    37afcc89fbdcb76d9518e04b2fc011027e2f4cd14b3b2f83cefd721641a47c5b 602078
    1a9258c365988961d87a0598725b609139c303ad48a5aad6c503c3b1a87849aa 780947
    b7450b264b1b0a411390d8931b112c27905a992520fc90569dc4b920aa32bbdc 671476
    3b46c71e3b92a563820ba32936be8330c586c41f938efd94be938386aae4328a 492462
    ac958597c82073f6bb65129c68f72b651db5b9efd82e11547d07350214bc268b 637051
    1cee58eb1f2d9c7ebb254d208a03c783ce6cf2c4d8c2cf45e235dd23b4ce1b29 701970
    e3111a2fd4da24af15d6459ef9eacfe54106b38e27b4a21821b75c3f5d2d5baf 557596
    1071c68372cc5a01435c2c225a5cf7d4bb803846ec08bb6b3d6721b156d7cb96 706397
    """.split()
    url = "http://r0k.us/graphics/kodak/kodak/kodim{:02d}.png"
    return tuple(Remote(url.format(i + 1), digests[2 * i], int(digests[2 * i + 1])) for i in range(24))


# ETH Zurich's archives: URL, size and SHA-256 from TensorFlow Datasets' url_checksums (div2k.txt, clic.txt).
_ETH = "https://data.vision.ee.ethz.ch/cvl"
REGISTRY: dict[str, DataSet] = {
    "bundled-train": DataSet(bundled="train", use="training", source="the bundled photos' training split (pip packages)"),
    "bundled-test": DataSet(bundled="test", source="the bundled photos' held-out split (pip packages)"),
    "kodak": DataSet(_kodak(), source="Kodak Lossless True Color Image Suite, 24 images of 768x512"),
    # The paper's test set: TESTIMAGES SAMPLING 1200 RGB (Asuni and Giachetti, STAG 2014), 100 images
    # of 1200x1200, the folder RGB_OR_1200x1200 of this archive (511 MB). No SHA-256 is published:
    # the first download's is printed and kept beside the images, to pin later ones.
    "tecnick": DataSet((Remote("https://sourceforge.net/projects/testimages/files/OLD/OLD_SAMPLING/testimages.zip"
                               "/download", None),), members="*RGB_OR_1200x1200/*",
                       source="TESTIMAGES SAMPLING 1200 RGB (TecNick), 100 images of 1200x1200"),
    "clic2020-professional-valid": DataSet(
        (Remote(f"{_ETH}/clic/professional_valid_2020.zip",
                "00be38092ade2ab5163b65f7f6523d46c7bca147007f559adbb02c0afc236b7d", 134834429),),
        source="CLIC 2020 professional validation set, 41 images"),
    "clic2020-professional-train": DataSet(
        (Remote(f"{_ETH}/clic/professional_train_2020.zip",
                "54a2a684b5cbd0db91770a8695efb774fed1f612194fee68bceaf6b1c48e5d5f", 2003385131),),
        use="training", source="CLIC 2020 professional training set, 585 images"),
    "div2k-train": DataSet(
        (Remote(f"{_ETH}/DIV2K/DIV2K_train_HR.zip",
                "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335", 3530603713),),
        members="DIV2K_train_HR/*", use="training",
        source="DIV2K training set, high resolution, 800 images"),
}


def registry() -> dict[str, DataSet]:
    """The built-in sets, with those of the YAML file ``LIC_DATA_REGISTRY`` names added or replacing them::

        kodak:                                   # a name, then its files (sha256 and size optional)
          files: [{url: https://host/kodim01.png, sha256: 3f...e1, size: 736501}]
          members: "*"                           # archive members that are images (a glob)
          use: evaluation                        # or training
          source: what it is
    """
    path = os.environ.get("LIC_DATA_REGISTRY")
    if not path:
        return REGISTRY
    try:
        entries = yaml.safe_load(Path(path).read_text()) or {}
        extra = {name: DataSet(tuple(Remote(f["url"], f.get("sha256"), f.get("size")) for f in e["files"]),
                               e.get("members", "*"), e.get("use", "evaluation"), e.get("source", f"from {path}"))
                 for name, e in entries.items()}
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
        raise LicError(f"LIC_DATA_REGISTRY={path}: not a registry of data sets ({type(exc).__name__}: {exc})") from None
    return {**REGISTRY, **extra}
