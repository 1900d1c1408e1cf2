"""The shell wing: what composes, starts, supervises and serves a Mintlog process. The one package (with
`mintlog.adapters` itself) that imports adapters; nothing outside it but `mintlog.cli` imports it.

| module | what it does |
|---|---|
| `bootstrap` | the composition root: settings in, a `Runtime` of adapters out |
| `registry` | the role registry: name, factory, serves HTTP or not, start order |
| `process` | runs the selected roles in one process until SIGINT/SIGTERM |
| `workers` | serves one HTTP role in N Granian worker processes (`MINTLOG_HTTP__WORKERS>1`) |
| `pipeline_child` | runs the pipeline stages in supervised child processes of an all-in-one process |
| `ops` | `/healthz`, `/readyz`, `/metrics` of a process that serves no HTTP role (`MINTLOG_HTTP__OPS_PORT`) |
| `datadir` | one `mintlog run` per data directory |
| `preflight` | what `mintlog run` (and `mintlog config check`) checks before it starts anything |
| `ports` | the ports a process binds, with their settings, and its one "mintlog ready" line |
| `commands` | what `mintlog run`, `mintlog admin bootstrap`, `mintlog config check` and `mintlog db` do |
"""
