"""``status.py URL``: print the HTTP status of GET URL (for probes run with `docker exec`)."""

import sys
import urllib.error
import urllib.request

try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
