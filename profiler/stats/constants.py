"""The levels every test and interval here uses unless told otherwise."""

# Standard normal quantiles: NormalDist().inv_cdf(0.975) and (0.80) give these to within one unit
# in the last place; the literals keep earlier figures bit-identical.
Z_95 = 1.959963984540054  # two-sided 95%
Z_80 = 0.8416212335729143  # one-sided 80% power
Z_90 = 1.6448536269514722  # two-sided 90% = one-sided 95%: the interval a TOST at 5% reads
Z_90_ONE_SIDED = 1.2815515655446004  # one-sided 90%: 80% power for both of a TOST's one-sided tests
ALPHA = 0.05  # the significance level of every test and interval here unless told otherwise

