"""The web app: REST API and static page (`colorit serve`); build it with colorit.server.app.create_app().

The defaults and limits live here, apart from the app, so that the CLI can show them without importing
FastAPI (README, "Limits").
"""

# One worker that may use every CPU answers a single user fastest; others wait in the queue.
DEFAULT_WORKERS = 1
DEFAULT_QUEUE = 8
DEFAULT_MAX_UPLOAD_MB = 25
DEFAULT_MAX_PIXELS = 50_000_000

# Reading an upload takes no colorize slot. A client must keep sending (no pause longer than the
# first), at UPLOAD_MIN_BYTES_PER_S on average once UPLOAD_RATE_GRACE_S have passed, and finish
# within UPLOAD_TIMEOUT_S; past any of those its upload is refused with 408. A client that trickles a
# byte a second is so cut off after a few seconds instead of holding its connection for minutes.
UPLOAD_IDLE_TIMEOUT_S = 10.0
UPLOAD_TIMEOUT_S = 120.0
UPLOAD_RATE_GRACE_S = 5.0
UPLOAD_MIN_BYTES_PER_S = 4096
# Uploads read at once from one client address (an IPv6 client: its /64 network), so that one client
# cannot hold connections and memory meant for everyone (429 past it; the page sends at most 2 at once,
# so this leaves room for a few tabs or people behind one address); and the bytes that all uploads
# being read may hold together, in full uploads per colorize slot (503 past it). Memory is counted in
# bytes received, so a slow client holds only what it has sent.
UPLOADS_PER_CLIENT = 8
UPLOADS_PER_SLOT = 2
