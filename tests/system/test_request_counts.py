# -*- coding: utf-8 -*-
"""Request counts per operation (the smoke version of `make bench`'s request counts): exact, no wall-clock assertion.

One real ansible-playbook run against the in-process emulator on loopback (a non-HCP hostname, so every
module run starts with the platform check GET /api/v2/ping). The 1-request idempotent run on
app.terraform.io is covered by the unit test
tests/unit/plugins/modules/test_tfe_audit_trail_token.py::test_idempotent_present_on_app_terraform_io_is_one_request.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import harness  # noqa: E402  pylint: disable=wrong-import-position
import request_counts  # noqa: E402  pylint: disable=wrong-import-position

TOKEN = "/api/v2/organizations/%s/authentication-token"

EXPECTED = {
    "create": ["GET /api/v2/ping 204", "GET %s 404" % (TOKEN % "rc-module"), "POST %s 201" % (TOKEN % "rc-module")],
    "idempotent_present": ["GET /api/v2/ping 204", "GET %s 200" % (TOKEN % "rc-module")],
    "regenerate": ["GET /api/v2/ping 204", "GET %s 200" % (TOKEN % "rc-module"),
                   "POST %s 201" % (TOKEN % "rc-module")],
    "absent_when_present": ["GET /api/v2/ping 204", "GET %s 200" % (TOKEN % "rc-module"),
                            "DELETE %s 204" % (TOKEN % "rc-module")],
    "absent_when_absent": ["GET /api/v2/ping 204", "GET %s 404" % (TOKEN % "rc-module")],
    "role_first_run": ["GET /api/v2/ping 204", "GET %s 404" % (TOKEN % "rc-role"), "POST %s 201" % (TOKEN % "rc-role")],
    # platform check, token metadata, verify the stored secret, and nothing else
    "role_idempotent": ["GET /api/v2/ping 204", "GET %s 200" % (TOKEN % "rc-role"),
                        "GET /api/v2/organization/audit-trail 200"],
}


@pytest.fixture(scope="module")
def counts():
    with harness.Workspace() as workspace:
        measured = request_counts.measure(workspace)[0]
    return measured


@pytest.mark.parametrize("operation", list(request_counts.OPERATIONS))
def test_request_count(counts, operation):
    dummy, target, expected = request_counts.OPERATIONS[operation]
    assert counts[operation] == EXPECTED[operation]
    assert len(counts[operation]) == expected <= target
