"""The ward's central station: a Dash app over a Kafka-fed, bounded in-memory store.

`python -m monitor.dashboard` serves it. Modules: `feed` (the one Kafka reader), `store`
(bounded per-bed buffers and alarms), `figures` (pure figure builders), one module per page
(`central`, `detail`, `history`, `offline_page` with its core in `analysis`) and `app` (shell
and routing).
"""
