"""The migration console: server-rendered pages on the admin listener (GET /console) that show the
rollout and every kept shadow difference, two JSON documents or two pictures side by side.

It reads through the admin listener's AdminApi (proxy/admin/api.py), in-process: a single process's own
state, or under `serve --workers N` the parent's merge of every worker's. What it shows is that
process's (or that parent's) memory only; the fleet's view is Grafana's. Owns the pages, the login
(a token once, by URL or form, then an HttpOnly session cookie), the sessions and their CSRF tokens, and
the traffic figures it keeps over the last minutes; owns no operation (the AdminApi's) and no state of
the proxy's.
"""
