"""Statistics over many runs: score aggregates with bootstrap intervals, run grouping, published figures.

`stats` holds the numerics (Agarwal et al., NeurIPS 2021), `runs` turns run directories into seeds and
groups, `published` the literature's numbers, `plots` the figures; `mtrl.app.report` is the command.
"""
