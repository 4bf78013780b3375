"""The district collector: receives sealed sitting bundles over tus 1.0.0 and shows the dashboard.

`app.create_app` composes the routers (`tus`, `stations`); `cli` has the plain functions the
`station collector ...` commands call. Nothing here imports another package of the project.
"""
