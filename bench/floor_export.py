# -*- coding: utf-8 -*-
"""The floor for the events export: a plain `requests` paging loop writing the same NDJSON lines.

usage: floor_export.py BASE_URL TOKEN DEST [PAGE_SIZE]

The same pages as the module (GET /api/v2/organization/audit-trail, page[size]=1000, page[number] 1, 2, ...
until `next_page` is null), the same line format (compact JSON, the API's key order, UTF-8), written in the
order the API lists them. No sorting, no de-duplication, no cursor file, no fsync, no crash safety, no
retries: what a quick script would do (and why it is only a floor: it is not exact while pages shift).
"""

import json
import sys

import requests


def main():
    base_url, token, dest = sys.argv[1:4]
    page_size = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    session = requests.Session()
    session.headers.update({"Authorization": "Bearer " + token, "Accept": "application/json"})
    number, count = 1, 0
    with open(dest, "wb") as out:
        while True:
            params = {"page[number]": number, "page[size]": page_size}
            response = session.get(base_url + "/api/v2/organization/audit-trail", params=params, timeout=30)
            response.raise_for_status()
            body = response.json()
            events = body["data"]
            if not events:
                break
            out.write(b"".join((json.dumps(e, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
                               for e in events))
            count += len(events)
            number += 1
            if not body["pagination"].get("next_page"):
                break
    print(json.dumps({"count": count}))


if __name__ == "__main__":
    main()
