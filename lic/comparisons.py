"""The comparisons a report makes, as tables: each retrained family against its base and its
control, TCQ against USQ, every family against JPEG; BD-rates with jackknife t-intervals over
the images; the claims across seeds and machines; the open questions; curves that fold.

Variants are named ``<quantizer>-<variant>`` (``usq-base``, ``tcq-decoder``, ...) or after a
classical codec (``jpeg``, ``webp``, ``avif``).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lic.bdrate import Interval, bd_rate_ci, bd_rate_curves, load_per_image
from lic.config import CLASSICAL_CODECS as ANCHORS
from lic.config import Family, coded_base, coding_of, trained_for
from lic.errors import LicError

LABELS = {"base": "baseline", "decoder": "decoder retrained", "hyper-decoder": "hyper-decoder + decoder retrained",
          "control": "control (noise fine-tune)", "hyper-control": "hyper-control (noise fine-tune of h_s and g_s)"}
METRICS = {"psnr-rgb": "PSNR-RGB (dB)", "ms-ssim-rgb": "MS-SSIM-RGB"}
COLUMNS = {"psnr-rgb": "bd_rate_psnr_pct", "ms-ssim-rgb": "bd_rate_msssim_pct"}
ORDER = ("usq", "rdoq", "tcq")  # the quantizers, each compared with those before it


def label(variant: str) -> str:
    if variant in ANCHORS:
        return f"{variant.upper()} (Pillow)"
    q, _, kind = variant.partition("-")
    fam = family_of(kind)
    coded = coding_of(variant)
    if coded and coded[0] != coded[1]:
        return f"{q.upper()} baseline coded with {coded[1].upper()}"
    if fam is None:
        return f"{q.upper()} {LABELS.get(kind, kind)}"
    stale = " (stale indices)" if fam.strategy == "stale" else ""
    return f"{q.upper()} {LABELS[fam.mode]}{stale}" + (f", round {fam.round}" if fam.round > 1 else "")


def family_of(kind: str) -> Family | None:
    try:
        return Family.parse(kind)
    except LicError:
        return None


def read_results(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LicError(f"{path}: not a readable results JSON ({type(exc).__name__})") from None


def load_results(eval_dir: Path) -> dict[str, dict[str, Any]]:
    """Every results JSON in ``eval_dir`` by variant name (the file stem)."""
    out = {p.stem: read_results(p) for p in sorted(Path(eval_dir).glob("*.json"))}
    if not out:
        raise LicError(f"{eval_dir}: no results JSON to report on")
    return out


def comparisons(variants: list[str]) -> list[tuple[str, str]]:
    """(test, anchor) pairs that exist among ``variants``: each retrained family against its base
    (coded with its quantizer: RDOQ's is USQ's base coded with RDOQ) and against its control (the same
    parameters and steps on the training surrogate: round ``r``'s control for round ``r``; RDOQ's are
    USQ's), each quantizer's family against the same family of the quantizers before it (USQ, RDOQ,
    TCQ), and every family against JPEG. Base models coded with several quantizers
    (:func:`lic.config.coded_base`) add the quantizer's effect (each coding against USQ's, on the same
    model) and the training's (the TCQ-trained model against the USQ-trained one, with the same
    coding)."""
    pairs = []
    coded = {coding_of(v): v for v in variants if coding_of(v)}
    for v in variants:
        q, _, kind = v.partition("-")
        if v not in ANCHORS and kind != "base" and not coding_of(v) and base_of(v) in variants:
            pairs.append((v, base_of(v)))
    for v in variants:
        if (control := control_of(v)) in variants:
            pairs.append((v, control))
    for (trained, coding), v in coded.items():
        if coding != "usq" and (trained, "usq") in coded:
            pairs.append((v, coded[trained, "usq"]))  # the quantizer's effect
    for v in variants:  # the same family of each quantizer before it: TCQ against RDOQ and USQ, RDOQ against USQ
        q, _, kind = v.partition("-")
        if q in ORDER and not coding_of(v):
            pairs += [(v, f"{a}-{kind}") for a in ORDER[:ORDER.index(q)][::-1] if f"{a}-{kind}" in variants]
    for (trained, coding), v in coded.items():
        if trained == "tcq" and ("usq", coding) in coded:
            pairs.append((v, coded["usq", coding]))  # the training's effect
    if ("tcq", "tcq") in coded and ("usq", "usq") in coded:
        pairs.append((coded["tcq", "tcq"], coded["usq", "usq"]))  # both at once: each coded as it was trained
    for v in variants:
        if v not in ANCHORS and not (coding_of(v) and kind_of(v) != "base") and "jpeg" in variants:
            pairs.append((v, "jpeg"))
    return list(dict.fromkeys(pairs))


def base_of(variant: str) -> str:
    """The base model a retrained family started from, coded with the family's quantizer (RDOQ's
    families start from USQ's base: ``usq-base-as-rdoq``)."""
    q = variant.partition("-")[0]
    return coded_base(trained_for(q), q)


def control_of(variant: str) -> str | None:
    """A retrained family's control (RDOQ's are USQ's, :meth:`lic.config.RetrainPlan.families`), or
    None for a control, a base or an anchor."""
    q, _, kind = variant.partition("-")
    fam = None if variant in ANCHORS else family_of(kind)
    return None if fam is None or fam.is_control else f"{trained_for(q)}-{fam.control.name}"


def kind_of(variant: str) -> str:
    return variant.partition("-")[2]


def coding_table(results: dict[str, dict[str, Any]], eval_dir: Path, metric: str = "psnr-rgb") -> pd.DataFrame:
    """Training surrogate (rows) against coding quantizer (columns): each base model's BD-rate, coded
    with each quantizer, against the USQ-trained model coded with USQ, with its interval."""
    coded = {coding_of(v): v for v in results if coding_of(v)}
    codings = [c for c in ORDER if any(k == c for _, k in coded)]
    if ("usq", "usq") not in coded or len(codings) < 2:
        return pd.DataFrame()
    anchor = load_per_image(Path(eval_dir) / f"{coded['usq', 'usq']}.json", metric)
    rows = []
    for trained in (t for t in ("usq", "tcq") if any(k == t for k, _ in coded)):
        row = {"trained with": {"usq": "USQ noise", "tcq": "TCQ perturbation"}[trained]}
        for c in codings:
            v = coded.get((trained, c))
            try:
                row[f"coded {c.upper()}"] = "n/a" if v is None else "0 (the anchor)" if v == coded["usq", "usq"] \
                    else str_interval(bd_rate_ci(anchor, load_per_image(Path(eval_dir) / f"{v}.json", metric)))
            except LicError:
                row[f"coded {c.upper()}"] = "n/a"
        rows.append(row)
    return pd.DataFrame(rows)


def method_table(results: dict[str, dict[str, Any]], eval_dir: Path, metric: str = "psnr-rgb") -> pd.DataFrame:
    """Each quantizer against the ones before it, BD-rate with its interval: on USQ's base model,
    encoder-only (the quantizer's effect alone), then after each retraining phase on the quantizer's
    own latents (the quantizer with the method). Empty unless RDOQ has retrained families."""
    pairs = [(test, anchor) for i, test in enumerate(ORDER) for anchor in ORDER[:i][::-1]]
    families = {kind_of(v): family_of(kind_of(v)) for v in results if v.startswith("rdoq-")}
    kinds = sorted(k for k, fam in families.items() if fam is not None and fam.round == 1)
    if not kinds:
        return pd.DataFrame()
    rows = []
    for kind in ("base", *kinds):
        row = {"models": "USQ's base, encoder-only" if kind == "base" else label(f"rdoq-{kind}").removeprefix("RDOQ ")}
        for test, anchor in pairs:
            t, a = (coded_base("usq", test), coded_base("usq", anchor)) if kind == "base" else (f"{test}-{kind}",
                                                                                              f"{anchor}-{kind}")
            try:
                cell = str_interval(bd_rate_ci(load_per_image(Path(eval_dir) / f"{a}.json", metric),
                                               load_per_image(Path(eval_dir) / f"{t}.json", metric)))
            except LicError:
                cell = "n/a"
            row[f"{test.upper()} vs {anchor.upper()}"] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def str_interval(iv: Interval) -> str:
    """``value [low, high]``, ``*`` where the interval excludes 0."""
    if math.isnan(iv.low):
        return f"{iv.value:+.2f} [no interval]"
    return f"{iv.value:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]" + (" *" if iv.excludes_zero else "")


def curve(res: dict[str, Any], metric: str) -> tuple[list[float], list[float]]:
    pts = sorted((r, d) for r, d in zip(res["results"]["bpp"], res["results"][metric]) if not math.isnan(d))
    return [p[0] for p in pts], [p[1] for p in pts]


def bd_table(results: dict[str, dict[str, Any]], eval_dir: Path, same_sign: dict[tuple[str, str], bool] | None = None
             ) -> pd.DataFrame:
    """Every comparison's BD-rate of the mean curves, its interval over images, the number of images,
    how many have a BD-rate of their own and Wilcoxon's p on those, from the per-image CSVs in
    ``eval_dir`` (nan where undefined). ``same_sign``: whether every run that the report compares
    gives a claim's PSNR BD-rate one sign (:func:`run_table`); a claim without it is never starred."""
    rows = []
    per_image = functools.cache(lambda variant, metric: load_per_image(Path(eval_dir) / f"{variant}.json", metric))
    for test, anchor in comparisons(list(results)):
        row: dict[str, Any] = {"test": test, "anchor": anchor, "same_sign": (same_sign or {}).get((test, anchor), True)}
        for metric, col in COLUMNS.items():
            try:
                iv = bd_rate_ci(per_image(anchor, metric), per_image(test, metric))
                row |= {col: iv.value, f"{col}_low": iv.low, f"{col}_high": iv.high, "images": len(iv.per_image),
                        f"{col}_defined": iv.defined, f"{col}_p": iv.wilcoxon_p}
            except LicError:  # no interval (fewer than 3 images): the mean curves' BD-rate alone, if any
                try:
                    value = bd_rate_curves(curve(results[anchor], metric), curve(results[test], metric))
                except (LicError, ValueError):  # undefined, or a curve with no point in this metric
                    value = math.nan
                row |= {col: value, f"{col}_low": math.nan, f"{col}_high": math.nan}
        rows.append(row)
    return pd.DataFrame(rows)


def is_claim(test: str, anchor: str) -> bool:
    """The comparisons the report gives across seeds: retrained against control, one quantizer against
    another (the same family, or base models coded with several quantizers), each family against JPEG."""
    fam = family_of(anchor.partition("-")[2])
    (q, _, kind), (a, _, anchor_kind) = test.partition("-"), anchor.partition("-")
    return bool(fam and fam.is_control) or (q != a and kind == anchor_kind) or anchor == "jpeg" or bool(
        coding_of(test) and coding_of(anchor))


def claim_key(test: str, anchor: str) -> str:
    """A claim's stable name in ``metrics.json`` (a column of ``dvc exp show``): ``<test>-vs-<anchor>``."""
    return f"{test}-vs-{anchor}"


def run_table(runs: dict[str, dict[str, dict[str, Any]]]) -> pd.DataFrame:
    """The BD-rate (PSNR, mean curves) of each claim in each run (a seed, or another machine's
    evaluations of the same recipe), their mean and range, and whether every run that made the claim
    agrees on its sign ("one run" where only one did: a family that the other runs predate);
    classical anchors (JPEG) missing from a run are read from the first run's results, a learned
    family never."""
    first = next(iter(runs.values()))
    rows = []
    for test, anchor in comparisons(list(first)):
        if not is_claim(test, anchor):
            continue
        row: dict[str, Any] = {"test": test, "anchor": anchor}
        for name, res in runs.items():
            try:
                a = res[anchor] if anchor in res or anchor not in ANCHORS else first[anchor]
                row[name] = bd_rate_curves(curve(a, "psnr-rgb"), curve(res[test], "psnr-rgb"))
            except (LicError, KeyError):
                row[name] = math.nan
        values = [row[name] for name in runs if not math.isnan(row[name])]  # the runs that made this claim
        row["mean"] = float(np.mean(values)) if values else math.nan
        row["range"] = float(np.max(values) - np.min(values)) if values else math.nan
        row["same sign"] = ("one run" if len(values) < 2 else
                            "yes" if all(v < 0 for v in values) or all(v > 0 for v in values) else "no")
        rows.append(row)
    return pd.DataFrame(rows)


def folded(results: dict[str, dict[str, Any]]) -> list[str]:
    """The learned families whose quality does not rise with their rate, one line each, naming the
    metric and the points where it falls: no BD-rate exists against such a curve."""
    out = []
    for v, res in results.items():
        if v in ANCHORS:
            continue
        points = res.get("points") or [str(i) for i in range(len(res["results"]["bpp"]))]
        for metric, name in (("psnr-rgb", "PSNR"), ("ms-ssim-rgb", "MS-SSIM")):
            pts = sorted((r, d, p) for r, d, p in zip(res["results"]["bpp"], res["results"][metric], points)
                         if not math.isnan(d))
            falls = [f"{Path(p).stem} ({r0:.4f} bpp, {d0:.4f}) to {Path(q).stem} ({r1:.4f} bpp, {d1:.4f})"
                     for (r0, d0, p), (r1, d1, q) in zip(pts, pts[1:]) if d1 <= d0]
            if falls:
                out.append(f"`{v}` {name}: " + "; ".join(falls))
    return out


def starred(r: pd.Series | dict, col: str) -> bool:
    """A claim holds: its interval excludes 0 and (PSNR) every run the report compares shares its sign."""
    excludes = r[f"{col}_low"] > 0 or r[f"{col}_high"] < 0
    return bool(excludes and (col != COLUMNS["psnr-rgb"] or r.get("same_sign", True) is not False))


def _cell(r: pd.Series, col: str) -> str:
    """``value [low, high]``; ``*`` marks a claim that holds (:func:`starred`)."""
    if math.isnan(r[col]):
        return "n/a"
    if math.isnan(r[f"{col}_low"]):
        return f"{r[col]:+.2f} [no interval]"
    mark = " *" if starred(r, col) else ""
    return f"{r[col]:+.2f} [{r[f'{col}_low']:+.2f}, {r[f'{col}_high']:+.2f}]{mark}"


def _images(r: pd.Series) -> str:
    """How many images; where some have no BD-rate of their own, how many do, per metric."""
    n = 0 if pd.isna(r.get("images")) else int(r["images"])
    partial = [f"{METRICS[m].split(' ')[0]} {int(r[f'{c}_defined'])}" for m, c in COLUMNS.items()
               if not pd.isna(r.get(f"{c}_defined", math.nan)) and int(r[f"{c}_defined"]) < n]
    return f"{n} ({', '.join(partial)} defined)" if partial else str(n)


def _p(r: pd.Series) -> str:
    return ", ".join("n/a" if pd.isna(r.get(f"{c}_p", math.nan)) else f"{r[f'{c}_p']:.3f}" for c in COLUMNS.values())


def table_markdown(table: pd.DataFrame) -> str:
    """``value [low, high]`` per metric, ``*`` where the claim holds; the images and Wilcoxon's p."""
    shown = pd.DataFrame({"test": table["test"], "anchor": table["anchor"],
                          **{f"BD-rate {METRICS[m].split(' ')[0]} %": table.apply(_cell, axis=1, col=c)
                             for m, c in COLUMNS.items()},
                          "images": table.apply(_images, axis=1),
                          "p (PSNR, MS-SSIM)": table.apply(_p, axis=1)})
    return shown.to_markdown(index=False)


def open_questions(results: dict[str, dict[str, Any]], table: pd.DataFrame) -> pd.DataFrame:
    """The paper's open questions, one row per retrained family but the controls: its strategy and
    round, its BD-rate (PSNR) against its base and against its control, and its retraining wall
    time (every lambda's run, with the earlier rounds and the datasets made for later rounds)."""
    rows = []
    for v, res in results.items():
        q, _, kind = v.partition("-")
        fam = None if v in ANCHORS else family_of(kind)
        if fam is None or fam.is_control:
            continue
        row = {"quantizer": q.upper(), "family": LABELS[fam.mode], "strategy": fam.strategy if fam.mode ==
               "hyper-decoder" else "", "round": fam.round}
        for name, anchor in (("vs base", base_of(v)), ("vs control", control_of(v))):
            hit = table[(table["test"] == v) & (table["anchor"] == anchor)] if len(table) else table
            row[f"BD-rate {name} %"] = _cell(hit.iloc[0], COLUMNS["psnr-rgb"]) if len(hit) else "n/a"
        walls = [m.get("cumulative_wall_s") for m in res.get("models", {}).values()]
        row["retraining (min)"] = f"{sum(walls) / 60:.1f}" if walls and None not in walls else "n/a"
        rows.append(row)
    return pd.DataFrame(sorted(rows, key=lambda r: (r["quantizer"], r["family"], r["strategy"], r["round"])))


