"""The district collector: receives sealed sitting bundles over tus 1.0.0 and shows the dashboard.

`app.create_app` composes the routers (`tus`, `stations`); `cli` has the plain functions the
`station collector ...` commands call. Nothing here imports another package of the project.

Its data dir holds `collector.db` (SQLite: stations, uploads, sittings, heartbeats, pre-checks),
`incoming/<upload id>.part` (data still arriving, on local disk) and, with the default storage,
`files/<station>/<sitting>/<path>` (verified files only).
"""
