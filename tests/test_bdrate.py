"""BD-rate against itself and against a curve with a known rate saving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lic.bdrate import bd_rate, bd_rate_curves
from lic.errors import LicError

ROOT = Path(__file__).resolve().parents[1]

RATES = [0.15, 0.3, 0.6, 1.2, 2.0]
PSNRS = [27.0, 30.0, 33.0, 36.0, 38.5]


def _write(path: Path, rates: list[float], psnrs: list[float]) -> Path:
    path.write_text(json.dumps({"name": path.stem, "results": {"bpp": rates, "psnr-rgb": psnrs}}))
    return path


@pytest.mark.parametrize("method", ["pchip", "akima"])
def test_curve_against_itself_is_zero(tmp_path: Path, method: str) -> None:
    a = _write(tmp_path / "a.json", RATES, PSNRS)
    assert bd_rate(a, a, method=method) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("factor", [0.9, 0.75, 1.2])
def test_scaled_rates_give_known_bd_rate(tmp_path: Path, factor: float) -> None:
    a = _write(tmp_path / "a.json", RATES, PSNRS)
    b = _write(tmp_path / "b.json", [r * factor for r in RATES], PSNRS)
    assert bd_rate(a, b) == pytest.approx((factor - 1) * 100, abs=1e-6)


def test_shifted_quality_saves_rate(tmp_path: Path) -> None:
    # A curve 0.5 dB better everywhere needs less rate for the same quality.
    assert bd_rate_curves((RATES, PSNRS), (RATES, [p + 0.5 for p in PSNRS])) < 0


def test_single_point_is_refused(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.json", RATES[:1], PSNRS[:1])
    with pytest.raises(LicError, match="at least 2"):
        bd_rate(a, a)


def test_disjoint_curves_are_refused() -> None:
    with pytest.raises(LicError, match="no quality range"):
        bd_rate_curves((RATES, PSNRS), (RATES, [p + 20 for p in PSNRS]))


def test_non_monotonic_curve_is_a_clear_error() -> None:
    with pytest.raises(LicError, match="does not rise"):
        bd_rate_curves((RATES, PSNRS), (RATES, [27.0, 31.0, 30.0, 36.0, 38.5]))


def _family(path: Path, curves: dict[str, tuple[list[float], list[float]]], points: list[str] | None = None) -> Path:
    """A results JSON (mean curve) with its per-image CSV beside it, as lic eval writes them; ``points``
    labels the rate points (default ``q0``, ``q1``, ...)."""
    import csv

    import numpy as np

    points = points or [f"q{i}" for i in range(len(next(iter(curves.values()))[0]))]
    with path.with_suffix(".csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["point", "image", "bpp", "psnr_rgb", "ms_ssim_rgb"])
        for image, (rates, psnrs) in curves.items():
            for p, r, q in zip(points, rates, psnrs):
                w.writerow([p, image, r, q, 0.9])
    rates = np.mean([c[0] for c in curves.values()], axis=0).tolist()
    psnrs = np.mean([c[1] for c in curves.values()], axis=0).tolist()
    path.write_text(json.dumps({"name": path.stem, "points": points, "results": {"bpp": rates, "psnr-rgb": psnrs,
                                                                                 "ms-ssim-rgb": [0.9] * len(rates)}}))
    return path


def _images(seed: int = 0, n: int = 12) -> dict[str, tuple[list[float], list[float]]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):  # photos of different difficulty: rate scale and PSNR offset per image
        scale, offset = rng.uniform(0.5, 2.0), rng.uniform(-3, 3)
        out[f"img{i}.png"] = ([r * scale for r in RATES], [p + offset for p in PSNRS])
    return out


def test_the_interval_of_a_curve_against_itself_is_zero(tmp_path: Path) -> None:
    from lic.bdrate import bd_rate_ci, load_per_image

    a = load_per_image(_family(tmp_path / "a.json", _images()))
    iv = bd_rate_ci(a, a)
    assert (iv.value, iv.low, iv.high) == pytest.approx((0, 0, 0), abs=1e-9)
    assert not iv.excludes_zero and iv.failed == 0 and len(iv.per_image) == 12


@pytest.mark.parametrize("factor", [0.9, 1.15])
def test_the_interval_contains_a_known_rate_factor(tmp_path: Path, factor: float) -> None:
    """Each image's rate scaled by its own factor around ``factor``: the truth, ``factor - 1``, lies
    inside the interval, which is not degenerate."""
    import numpy as np

    from lic.bdrate import bd_rate_ci, load_per_image

    images = _images(1)
    rng = np.random.default_rng(2)
    jitter = rng.normal(0, 0.03, len(images))
    jitter -= jitter.mean()
    shifted = {k: ([r * factor * (1 + j) for r in rates], q) for (k, (rates, q)), j in zip(images.items(), jitter)}
    a = load_per_image(_family(tmp_path / "a.json", images))
    b = load_per_image(_family(tmp_path / "b.json", shifted))
    iv = bd_rate_ci(a, b)
    truth = (factor - 1) * 100
    assert iv.low < truth < iv.high and iv.high - iv.low > 0.5 and iv.excludes_zero
    assert np.mean(list(iv.per_image.values())) == pytest.approx(truth, abs=1.0)


def test_the_interval_over_images_that_disagree_includes_zero(tmp_path: Path) -> None:
    from lic.bdrate import bd_rate_ci, load_per_image

    images = _images(3)
    mixed = {k: ([r * (0.85 if i % 2 else 1.15) for r in rates], q) for i, (k, (rates, q)) in enumerate(images.items())}
    iv = bd_rate_ci(load_per_image(_family(tmp_path / "a.json", images)),
                    load_per_image(_family(tmp_path / "b.json", mixed)))
    assert iv.low < 0 < iv.high and not iv.excludes_zero


def test_bdrate_cli_prints_the_interval(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from conftest import run_cli

    a = _family(tmp_path / "a.json", _images())
    b = _family(tmp_path / "b.json", {k: ([r * 0.8 for r in rates], q) for k, (rates, q) in _images().items()})
    assert run_cli("bdrate", a, b, "--ci", "--metrics", tmp_path / "m.json") == 0
    out = capsys.readouterr().out
    assert out.startswith("-20.00 [-20.00, -20.00] (95% jackknife t-interval over 12 images; 12 of 12 with a BD-rate "
                          "of their own, Wilcoxon p=0.000)")
    assert json.loads((tmp_path / "m.json").read_text())["ci"] == pytest.approx([-20, -20])
    (tmp_path / "b.csv").unlink()
    assert run_cli("bdrate", a, b, "--ci") == 2


def test_against_a_published_curve_the_mean_curves_are_compared_and_the_missing_interval_said(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A published anchor has no per-image results: without ``--ci`` the mean curves are compared and one
    line says why there is no interval; with ``--ci`` one line says what is missing, exit 2."""
    from conftest import run_cli

    anchor = ROOT / "reports" / "anchors" / "compressai-mbt2018-mean-kodak.json"
    curve = json.loads(anchor.read_text())["results"]
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"results": {"bpp": [r * 0.9 for r in curve["bpp"]],
                                            "psnr-rgb": curve["psnr-rgb"]}}))
    assert run_cli("bdrate", anchor, mine) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("-10.00 (mean curves; no interval: ") and len(out.splitlines()) == 1
    assert f"{anchor} and {mine} have no per-image results" in out
    assert run_cli("bdrate", anchor, mine, "--ci") == 2
    assert "without --ci, lic bdrate compares the mean curves" in capsys.readouterr().err


def test_points_leave_out_a_folded_top_point(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A top point below its neighbour in quality: no BD-rate over the whole curve; ``--points 4`` gives
    the BD-rate of the four lowest-rate points, with its interval, as if the top one were never coded.
    The test saves a different share of rate at each point and labels the points out of rate order, so
    only the four lowest-rate points give the expected value."""
    import numpy as np

    from conftest import run_cli

    factors = [0.9, 0.85, 0.75, 0.7, 0.5]
    labels = ["p3", "p0", "p4", "p1", "p2"]
    folded = {k: (rates, [*q[:4], q[3] - 1.0]) for k, (rates, q) in _images().items()}
    saved = {k: ([r * f for r, f in zip(rates, factors)], q) for k, (rates, q) in folded.items()}
    a = _family(tmp_path / "a.json", folded, labels)
    b = _family(tmp_path / "b.json", saved, labels)
    assert run_cli("bdrate", a, b, "--ci") == 2
    mean = lambda fam: tuple(np.mean([c[i][:4] for c in fam.values()], axis=0).tolist() for i in (0, 1))
    expected = bd_rate_curves(mean(folded), mean(saved))
    assert -25 < expected < -10 and bd_rate(a, b, points=4) == pytest.approx(expected)
    assert run_cli("bdrate", a, b, "--ci", "--points", "4") == 0
    assert capsys.readouterr().out.startswith(f"{expected:.2f} [")
    assert run_cli("bdrate", a, b, "--points", "1") == 2


def test_report_overlays_a_published_curve_and_marks_intervals(tmp_path: Path) -> None:
    from lic.report import make_report, plot

    ev = tmp_path / "eval"
    ev.mkdir()
    images = _images(4)
    _family(ev / "usq-base.json", images)
    _family(ev / "usq-decoder.json", {k: ([r * 0.9 for r in rates], q) for k, (rates, q) in images.items()})
    published = Path(__file__).resolve().parents[1] / "reports" / "anchors" / "compressai-mbt2018-mean-kodak.json"
    metrics = make_report(ev, tmp_path / "out", "t", [published])
    assert metrics["bd_rate_psnr_ci95"]["usq-decoder vs usq-base"] == pytest.approx([-10, -10], abs=1e-6)
    assert "-10.00 [-10.00, -10.00] *" in (tmp_path / "out" / "bdrate.md").read_text()
    results = {v: json.loads((ev / f"{v}.json").read_text()) for v in ("usq-base", "usq-decoder")}
    labels = plot(results, "psnr-rgb", tmp_path / "p.png", "t", {"x": json.loads(published.read_text())})
    assert "CompressAI mbt2018-mean (published)" in labels
    assert "CompressAI mbt2018-mean (published)" not in plot(results, "psnr-rgb", tmp_path / "p.png", "t")
    with pytest.raises(LicError, match="not a readable results JSON"):
        make_report(ev, tmp_path / "out", "t", [tmp_path / "missing.json"])


def test_report_tables_strategies_and_rounds_against_their_own_controls(tmp_path: Path) -> None:
    """Round 2 is compared with round 2's control (equal steps), TCQ's phase 4 with USQ's; the
    open-questions table gives each family's strategy, round, BD-rates and summed retraining time."""
    from lic.comparisons import comparisons, label
    from lic.report import make_report

    ev = tmp_path / "eval"
    ev.mkdir()
    images = _images(5)
    scaled = lambda f: {k: ([r * f for r in rates], q) for k, (rates, q) in images.items()}  # noqa: E731
    for name, factor in (("tcq-base", 1.0), ("tcq-control", 1.0), ("tcq-control-r2", 0.95), ("tcq-decoder", 0.9),
                         ("tcq-decoder-r2", 0.8), ("tcq-hyper-decoder-stale", 0.85), ("usq-hyper-decoder-stale", 1.0)):
        path = _family(ev / f"{name}.json", scaled(factor))
        if name != "tcq-base":
            res = json.loads(path.read_text())
            res["models"] = {f"q{i}.ckpt": {"cumulative_wall_s": 30.0} for i in range(len(RATES))}
            path.write_text(json.dumps(res))
    pairs = comparisons(sorted(p.stem for p in ev.glob("*.json")))
    assert ("tcq-decoder-r2", "tcq-control-r2") in pairs and ("tcq-decoder-r2", "tcq-control") not in pairs
    assert ("tcq-hyper-decoder-stale", "usq-hyper-decoder-stale") in pairs
    assert label("tcq-hyper-decoder-stale-r2") == "TCQ hyper-decoder + decoder retrained (stale indices), round 2"
    make_report(ev, tmp_path / "out", "t")
    text = (tmp_path / "out" / "README.md").read_text()
    assert "## Open questions" in text
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| TCQ")]
    assert [r[3] for r in rows if r[1] == "decoder retrained"] == ["1", "2"]
    cells = next(r for r in rows if r[3] == "2")
    assert cells[:4] == ["TCQ", "decoder retrained", "", "2"]
    assert cells[4].startswith("-20.00") and cells[5].startswith("-15.79")  # 0.8 / 0.95 - 1
    assert cells[6] == f"{30 * len(RATES) / 60:.1f}"


def test_rdoq_families_are_compared_with_usqs_base_controls_and_families() -> None:
    """RDOQ's retrained families start from USQ's base coded with RDOQ and share USQ's controls; after
    retraining, RDOQ is compared with USQ and TCQ with both, family by family."""
    from lic.comparisons import comparisons, is_claim

    variants = ["usq-base", "usq-base-as-rdoq", "usq-control", "usq-decoder", "usq-hyper-control",
                "usq-hyper-decoder", "rdoq-decoder", "rdoq-hyper-decoder", "tcq-base", "tcq-control", "tcq-decoder"]
    pairs = comparisons(variants)
    assert ("rdoq-decoder", "usq-base-as-rdoq") in pairs  # against its base: shown, not a claim across runs
    for pair in (("rdoq-decoder", "usq-control"),
                 ("rdoq-hyper-decoder", "usq-hyper-control"), ("rdoq-decoder", "usq-decoder"),
                 ("rdoq-hyper-decoder", "usq-hyper-decoder"), ("tcq-decoder", "rdoq-decoder"),
                 ("tcq-decoder", "usq-decoder")):
        assert pair in pairs and is_claim(*pair), pair
    assert ("rdoq-decoder", "usq-base") not in pairs and not any(a == "rdoq-control" for _, a in pairs)


def test_the_report_tables_each_quantizer_against_the_ones_before_it(tmp_path: Path) -> None:
    """On USQ's base, encoder-only (the base coded with each quantizer), then family by family after
    retraining: RDOQ against USQ, TCQ against RDOQ and against USQ."""
    from lic.comparisons import method_table
    from lic.report import make_report

    ev = tmp_path / "eval"
    ev.mkdir()
    images = _images(5)
    scaled = lambda f: {k: ([r * f for r in rates], q) for k, (rates, q) in images.items()}  # noqa: E731
    for name, factor in (("usq-base", 1.0), ("usq-base-as-rdoq", 1.1), ("usq-base-as-tcq", 1.2), ("usq-decoder", 1.0),
                         ("rdoq-decoder", 0.9), ("tcq-decoder", 0.81)):
        _family(ev / f"{name}.json", scaled(factor))
    results = {p.stem: json.loads(p.read_text()) for p in ev.glob("*.json")}
    table = method_table(results, ev)
    assert list(table["models"]) == ["USQ's base, encoder-only", "decoder retrained"]
    rows = table.set_index("models")
    assert rows.loc["USQ's base, encoder-only", "RDOQ vs USQ"].startswith("+10.00")
    assert rows.loc["decoder retrained", "RDOQ vs USQ"].startswith("-10.00")
    assert rows.loc["decoder retrained", "TCQ vs RDOQ"].startswith("-10.00")
    assert rows.loc["decoder retrained", "TCQ vs USQ"].startswith("-19.00")
    assert method_table({k: v for k, v in results.items() if not k.startswith("rdoq")}, ev).empty
    make_report(ev, tmp_path / "out", "t")
    assert "## The quantizer with the method" in (tmp_path / "out" / "README.md").read_text()


def test_undefined_points_are_a_clear_error_not_a_crash() -> None:
    """MS-SSIM is undefined (nan) for images under 161 pixels a side; a report over such images
    says BD-rate is undefined instead of failing inside the interpolation."""
    with pytest.raises(LicError, match="undefined points"):
        bd_rate_curves(([0.1, 0.2, 0.3], [float("nan")] * 3), ([0.1, 0.2, 0.3], [30.0, 31.0, 32.0]))


def test_the_report_header_says_uncommitted_only_when_true(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from lic.report import git_commit

    monkeypatch.chdir(tmp_path)
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "-c", "user.name=t", "-c", "user.email=t@t",
                                                             "commit", "-qm", "x", "--allow-empty"]):
        subprocess.run(cmd, check=True, capture_output=True)
    for name in ("dvc.lock", "dvc.yaml", "code.py", "params.yaml"):
        (tmp_path / name).write_text("1")
    for folder in ("reports", "profiles"):
        (tmp_path / folder).mkdir()
    (tmp_path / "reports" / "r.md").write_text("1")
    (tmp_path / "profiles" / "demo.yaml").write_text("profile: demo\n")
    subprocess.run(["git", "add", "."], check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "y"], check=True)
    for name in ("dvc.lock", "dvc.yaml", "reports/r.md"):  # the pipeline writes these as it runs
        (tmp_path / name).write_text("2")
    (tmp_path / "params.yaml").write_text("profile: demo\n")  # make run PROFILE=demo installs the profile
    assert "uncommitted" not in git_commit("demo")
    assert git_commit("other").endswith("(with uncommitted changes)")  # not what this profile installs
    (tmp_path / "params.yaml").write_text("1")
    (tmp_path / "code.py").write_text("2")
    assert git_commit("demo").endswith("(with uncommitted changes)")


def test_a_folded_curve_is_named_at_the_top_of_the_table(tmp_path: Path) -> None:
    """A family whose PSNR falls at one point gets no BD-rate, and the report says which family and
    which points, above the table, instead of a quiet row of n/a."""
    from lic.report import make_report

    ev = tmp_path / "eval"
    ev.mkdir()
    images = _images(1, 4)
    _family(ev / "usq-base.json", images)
    fold = {k: (rates, [q[0], q[1], q[2] - 10, q[3], q[4]]) for k, (rates, q) in images.items()}  # falls at q2
    _family(ev / "usq-decoder.json", fold)
    metrics = make_report(ev, tmp_path / "out", "t")
    table = (tmp_path / "out" / "bdrate.md").read_text()
    assert table.startswith("**Folded curves.**")
    line = next(f for f in metrics["folded"] if f.startswith("`usq-decoder` PSNR"))
    assert "q1 (" in line and "to q2 (" in line and "q3" not in line.split(";")[0]
    assert not any(f.startswith("`usq-base` PSNR") for f in metrics["folded"])
    assert "usq-decoder vs usq-base" not in metrics["bd_rate_psnr_percent"]


def test_claims_have_stable_keys_and_runs_are_compared(tmp_path: Path) -> None:
    """``metrics.json`` carries each claim under ``<test>-vs-<anchor>`` (PSNR and MS-SSIM with their
    intervals); other runs of the recipe give the table of claims across runs, with their sign. A
    family that only the first run has (the other run predates it) keeps its star: no run disagrees."""
    from lic.report import make_report

    runs = {}
    for name, factor in (("a", 0.9), ("b", 0.95)):
        ev = tmp_path / name
        ev.mkdir()
        images = _images(2, 4)
        _family(ev / "tcq-control.json", images)
        _family(ev / "tcq-decoder.json", {k: ([r * factor for r in rates], q) for k, (rates, q) in images.items()})
        runs[name] = ev
    _family(runs["a"] / "tcq-hyper-control.json", images)
    _family(runs["b"] / "tcq-hyper-decoder.json", images)  # b lacks its control: a claim b cannot make
    _family(runs["a"] / "tcq-hyper-decoder.json", {k: ([r * 0.8 for r in rates], q) for k, (rates, q) in images.items()})
    metrics = make_report(runs["a"], tmp_path / "out", "t", runs={"other machine": runs["b"]})
    claim = metrics["claims"]["tcq-decoder-vs-tcq-control"]
    assert claim["psnr"] == pytest.approx(-10.0, abs=1e-6) and claim["psnr_low"] <= claim["psnr"] <= claim["psnr_high"]
    assert metrics["bd_rate_psnr_by_run"]["tcq-decoder-vs-tcq-control"] == pytest.approx(
        {"seed 0": -10.0, "other machine": -5.0}, abs=1e-6)
    text = (tmp_path / "out" / "README.md").read_text()
    assert "## Across seeds and machines" in text and "| yes" in text and "| one run" in text and "nan" not in text
    import json

    json.loads((tmp_path / "out" / "metrics.json").read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN
    row = next(line for line in (tmp_path / "out" / "bdrate.md").read_text().splitlines()
               if line.startswith("| tcq-hyper-decoder ") and "tcq-hyper-control" in line)
    assert row.split("|")[3].strip().endswith("*"), row
    curves = (tmp_path / "out" / "curves" / "tcq-decoder.csv").read_text().splitlines()
    assert curves[0] == "point,bpp,psnr_rgb,ms_ssim_rgb" and len(curves) == 1 + len(RATES)


def test_the_interval_covers_the_truth_with_seven_images_where_a_percentile_bootstrap_does_not() -> None:
    """The coverage simulation of the docs (``python -m lic.coverage``: 1,000 draws of 7 images),
    seeded: the reports' interval covers the true BD-rate at least 93% of the time at 95%, for normal
    and heavy-tailed (t(3)) effects; the percentile bootstrap, the earlier method, falls short (at
    fewer draws and resamples here)."""
    from lic.coverage import coverage, jackknife, percentile_bootstrap

    for distribution in ("normal", "t3"):
        share, _ = coverage(jackknife, distribution, draws=1000)
        assert share >= 0.93, (distribution, share)
    share, _ = coverage(percentile_bootstrap(100), "normal", draws=100)
    assert share < 0.9, share


def test_a_claim_shows_how_many_images_have_a_bd_rate_of_their_own(tmp_path: Path) -> None:
    """An image whose own test curve folds has no BD-rate of its own: the interval counts the others,
    the report's images column says so, and Wilcoxon's p is computed on the defined ones."""
    import pandas as pd

    from lic.bdrate import bd_rate_ci, load_per_image
    from lic.comparisons import table_markdown

    images = _images(4, n=7)
    test = {k: ([r * 0.9 for r in rates], q) for k, (rates, q) in images.items()}
    first = next(iter(test))
    test[first] = (test[first][0], [*test[first][1][:-1], test[first][1][-2] - 0.5])  # its top point folds
    iv = bd_rate_ci(load_per_image(_family(tmp_path / "a.json", images)), load_per_image(_family(tmp_path / "b.json", test)))
    assert iv.defined == 6 and len(iv.per_image) == 7 and 0 < iv.wilcoxon_p < 0.05
    row = {"test": "b", "anchor": "a", "same_sign": True, "images": 7}
    for col, defined in (("bd_rate_psnr_pct", iv.defined), ("bd_rate_msssim_pct", 7)):
        row |= {col: iv.value, f"{col}_low": iv.low, f"{col}_high": iv.high, f"{col}_defined": defined,
                f"{col}_p": iv.wilcoxon_p}
    shown = table_markdown(pd.DataFrame([row]))
    assert "7 (PSNR-RGB 6 defined)" in shown and f"{iv.wilcoxon_p:.3f}" in shown
    assert " *" in shown and " *" not in table_markdown(pd.DataFrame([row | {"same_sign": False}])).split("|")[3]


def test_two_images_give_the_mean_curves_bd_rate_without_an_interval(tmp_path: Path) -> None:
    """Under 3 images no interval is made, but the BD-rate of the mean curves still is: the table
    says "[no interval]" (never a star), and metrics.json holds the value alone, as strict JSON."""
    import json

    from lic.report import make_report

    images = _images(3, n=2)
    _family(tmp_path / "tcq-control.json", images)
    _family(tmp_path / "tcq-decoder.json", {k: ([r * 0.9 for r in rates], q) for k, (rates, q) in images.items()})
    metrics = make_report(tmp_path, tmp_path / "out", "t")
    claim = metrics["claims"]["tcq-decoder-vs-tcq-control"]
    assert claim["psnr"] == pytest.approx(-10.0, abs=1e-3) and "psnr_low" not in claim
    row = next(line for line in (tmp_path / "out" / "bdrate.md").read_text().splitlines() if "| tcq-decoder " in line)
    assert "-10.00 [no interval]" in row and "*" not in row
    json.loads((tmp_path / "out" / "metrics.json").read_text(), parse_constant=pytest.fail)
