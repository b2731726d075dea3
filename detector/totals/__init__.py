"""Survey totals: draw a review sample of a run, then estimate each class's total with a confidence interval from
the reviewed photos (model-assisted estimation; docs/survey.md, "From counts to a defensible total")."""

from detector.totals.api import SurveyTotals, estimate_totals
from detector.totals.estimation import TooFewReviews, TotalRow, TotalsEstimate, estimate_from_sample
from detector.totals.sampling import ReviewSample, draw_sample

__all__ = [
    "ReviewSample",
    "SurveyTotals",
    "TooFewReviews",
    "TotalRow",
    "TotalsEstimate",
    "draw_sample",
    "estimate_from_sample",
    "estimate_totals",
]
