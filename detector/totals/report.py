"""A short Markdown report of the survey totals and a bar chart (raw model sum vs estimate with its interval).

The chart uses matplotlib, which ultralytics (a dependency of the product) always installs.
"""

from __future__ import annotations

from pathlib import Path

from detector.totals.api import SurveyTotals
from detector.totals.estimation import ALL, TotalRow

REPORT_MD = "estimate.md"
REPORT_PNG = "estimate.png"


def _table(rows: list[TotalRow], level: float, with_folder: bool) -> list[str]:
    head = ["folder"] * with_folder + ["class", "raw model sum", "estimate", f"{level:.0%} interval", "SE", "reviewed"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r.folder] * with_folder + [
            r.class_name, str(r.raw_total), f"{r.estimate:.0f}", f"{r.ci_low:.0f} – {r.ci_high:.0f}", f"{r.se:.1f}",
            f"{r.reviewed} of {r.photos} photos",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report_markdown(totals: SurveyTotals, run_name: str, chart: str | None = REPORT_PNG) -> str:
    """The report's text: what was estimated how, the whole run's table, then per folder, then the notes."""
    estimate = totals.estimate
    level = estimate.confidence
    folders = [r for r in estimate.rows if r.folder != ALL]
    lines = [
        f"# Survey totals: {run_name}",
        "",
        f"Counts by model {totals.run_model}; totals estimated from a stratified random sample of reviewed photos "
        f"with the {estimate.method} estimator (model-assisted: the model's count of every photo, corrected by "
        f"the reviewed photos' differences), {level:.0%} intervals from Student's t.",
        "",
        "## Whole survey",
        "",
        *_table(estimate.overall, level, False),
    ]
    if chart:
        lines += ["", f"![raw model sums and estimated totals]({chart})"]
    if len({r.folder for r in folders}) > 1:
        lines += ["", "## Per folder", "", *_table(folders, level, True)]
    lines += ["", "## Notes", "", *(f"- {note}" for note in totals.notes)]
    return "\n".join(lines) + "\n"


def write_chart(path: Path, totals: SurveyTotals) -> Path:
    """Bars per class: the raw model sum and the estimate, with the interval as an error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in totals.estimate.overall if r.class_name in totals.estimate.class_names]
    x = np.arange(len(rows))
    estimate = np.array([r.estimate for r in rows])
    errors = np.array([[r.estimate - r.ci_low for r in rows], [r.ci_high - r.estimate for r in rows]])
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=120)
    ax.bar(x - 0.2, [r.raw_total for r in rows], 0.4, label="raw model sum", color="#9aa5b1")
    ax.bar(x + 0.2, estimate, 0.4, yerr=errors, capsize=4, label=f"estimate, {totals.estimate.confidence:.0%} interval",
           color="#2f6f9f")  # fmt: skip
    ax.set_xticks(x, [r.class_name.replace("_", " ") for r in rows])
    ax.set_ylabel("animals")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    ax.set_title(f"Survey totals ({totals.estimate.method} estimator)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def write_report(folder: Path, totals: SurveyTotals, run_name: str) -> tuple[Path, Path]:
    """``estimate.md`` and ``estimate.png`` in ``folder``."""
    chart = write_chart(Path(folder) / REPORT_PNG, totals)
    markdown = Path(folder) / REPORT_MD
    markdown.write_text(report_markdown(totals, run_name, chart.name), encoding="utf-8")
    return markdown, chart
