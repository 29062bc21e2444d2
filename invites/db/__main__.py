"""`python -m invites.db [URL]`: migrate the database to the latest schema."""

import os
import sys

from invites.db.migrate import upgrade_sync

url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("INVITES_DATABASE_URL")
if not url:
    sys.exit("Give a database URL as the argument, or set INVITES_DATABASE_URL.")
upgrade_sync(url)
print("Database is at the latest schema.")
