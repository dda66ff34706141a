"""The statistics behind lift and A/B winners: two proportions compared.

Large-sample (normal approximation) methods, as most marketing tools use: a pooled two-sided
z-test for "is there a difference", and an unpooled Wald interval for "how big is it". Both
need a few successes and failures per group to mean much; with small groups the interval is
wide and the p-value large, so no winner is called."""

import math
from dataclasses import dataclass

SIGNIFICANCE_LEVEL = 0.05
Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


def rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials else None


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def two_sided_p_value(z: float) -> float:
    # erfc keeps precision far in the tail, where 1 - cdf would round to 0.
    return math.erfc(abs(z) / math.sqrt(2.0))


@dataclass(frozen=True)
class Comparison:
    """Group A against group B (A usually the treatment or the challenger)."""

    rate_a: float | None
    rate_b: float | None
    absolute_lift: float | None  # rate_a - rate_b
    relative_lift: float | None  # absolute / rate_b; None when rate_b is 0
    ci_low: float | None  # 95% interval of rate_a - rate_b
    ci_high: float | None
    z: float | None
    p_value: float | None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < SIGNIFICANCE_LEVEL


def compare_proportions(x_a: int, n_a: int, x_b: int, n_b: int) -> Comparison:
    """Compare successes x out of n trials in two groups."""
    p_a, p_b = rate(x_a, n_a), rate(x_b, n_b)
    if p_a is None or p_b is None:
        return Comparison(p_a, p_b, None, None, None, None, None, None)
    diff = p_a - p_b
    relative = diff / p_b if p_b else None
    se_diff = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    pooled = (x_a + x_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se_pooled == 0:  # both groups all-or-nothing alike: no evidence of a difference
        z, p_value = 0.0, 1.0
    else:
        z = diff / se_pooled
        p_value = two_sided_p_value(z)
    return Comparison(p_a, p_b, diff, relative, diff - Z_95 * se_diff, diff + Z_95 * se_diff,
                      z, p_value)
