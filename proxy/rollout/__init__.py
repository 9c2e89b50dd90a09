"""Progressive delivery: step a route's rollout percent up on statistical evidence, abort it to 0 % on
evidence of a regression. Pure core: the statistics (stats.py), the judgement of one interval
(analysis.py), the rollout's state machine (state.py) and the edit of routes.yaml's text (yamledit.py).
The controller that fetches figures from Prometheus and writes the file is built on top of them.
"""
