# -*- coding: utf-8 -*-
"""The floor for the events export: a plain `requests` paging loop writing the same NDJSON file.

usage: floor_export.py BASE_URL TOKEN DEST [PAGE_SIZE]

Same request shape as the module (GET /api/v2/organization/audit-trail, page[size]=1000, the next page asked
by `since` = the newest event written), the same line format (compact JSON, the API's key order, UTF-8).
No cursor file, no fsync, no crash safety, no retries: what a quick script would do.
Assumes the events have distinct timestamps (the benchmark seeds them one second apart).
"""

import json
import sys

import requests


def main():
    base_url, token, dest = sys.argv[1:4]
    page_size = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    session = requests.Session()
    session.headers.update({"Authorization": "Bearer " + token, "Accept": "application/json"})
    since, count = None, 0
    with open(dest, "wb") as out:
        while True:
            params = {"page[number]": 1, "page[size]": page_size}
            if since:
                params["since"] = since
            response = session.get(base_url + "/api/v2/organization/audit-trail", params=params, timeout=30)
            response.raise_for_status()
            body = response.json()
            events = body["data"]
            if not events:
                break
            out.write(b"".join((json.dumps(e, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
                               for e in events))
            count += len(events)
            since = events[-1]["timestamp"]
            if not body["pagination"].get("next_page"):
                break
    print(json.dumps({"count": count}))


if __name__ == "__main__":
    main()
