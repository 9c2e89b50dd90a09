"""The progressive-delivery controller process: it runs the analyses of proxy/rollout against Prometheus
and moves `rollout.percent` through a Target (a file, or a Kubernetes ConfigMap in configmap.py).

cli.py (`rollout run|status|promote|...`) builds it; listener.py serves it and runs loop.py, which follows
the routes file and judges each route's intervals with the figures of figures.py (queries through
prometheus.py); rollouts.py makes a transition take effect (the state saved, the percent written through
target.py or configmap.py, the log lines), commands.py makes operators' commands; events.py and
metrics.py say what it decided. Nothing here routes a request, and nothing below imports it.
"""
