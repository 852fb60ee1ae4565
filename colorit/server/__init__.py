"""The web app: REST API and static page (`colorit serve`); build it with colorit.server.app.create_app().

The defaults live here, apart from the app, so that the CLI can show them without importing FastAPI.
"""

# One worker that may use every CPU answers a single user fastest; others wait in the queue.
DEFAULT_WORKERS = 1
DEFAULT_QUEUE = 8
DEFAULT_MAX_UPLOAD_MB = 25
DEFAULT_MAX_PIXELS = 50_000_000
