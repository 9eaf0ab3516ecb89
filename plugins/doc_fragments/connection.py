# -*- coding: utf-8 -*-
# Copyright: tfe.audit contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # The connection options shared by every tfe.audit module (argument spec: module_utils/_connection.py).
    DOCUMENTATION = r"""
options:
  hostname:
    description:
      - The HCP Terraform host to talk to, as V(host), V(host:port) or a URL with V(https://).
      - The host must be a DNS name (labels of letters, digits and inner hyphens; no V(_); international
        names in their V(xn--) form), an IPv4 address or a bracketed IPv6 address such as V([::1]:8443),
        with an optional port from 1 to 65535. A path, user info (V(@)), V(\\), V(%), white space or a
        control character is refused before any request, as the token could otherwise go to another host.
      - V(http://) is for local testing. It is accepted for a loopback host (V(localhost), V(127.0.0.0/8),
        V([::1])) and refused for any other host before any request, because the API token would cross the
        network in clear text, unless O(allow_insecure_http=true). A loopback V(http://) O(hostname) that a
        proxy from the environment (E(http_proxy), E(HTTP_PROXY), E(all_proxy), unless E(no_proxy) names the
        host) would carry off the machine is refused too, unless O(allow_insecure_http=true); add the host to
        E(no_proxy), for example with the task keyword C(environment).
      - The API base is C(<scheme>://<host>/api/v2/).
      - If not set, the environment variable E(TFE_HOSTNAME) is used, then E(TFE_ADDRESS).
      - For any host other than V(app.terraform.io) and V(app.eu.terraform.io) the module first asks
        C(GET /api/v2/ping) which platform it is, and refuses to act on Terraform Enterprise.
    type: str
    default: app.terraform.io
    aliases: [tfe_address, address]
  token:
    description:
      - The API token used to authenticate (a user token of an owners-team member, or an organization token).
      - If not set, E(TFE_TOKEN) is used, then Terraform CLI's E(TF_TOKEN_<host>) (dots as underscores,
        hyphens as double underscores, for example E(TF_TOKEN_app_terraform_io)), then a C(credentials)
        block for the host in the Terraform CLI configuration (E(TF_CLI_CONFIG_FILE), else C(~/.terraformrc))
        or in C(~/.terraform.d/credentials.tfrc.json), as Terraform does.
      - Like Terraform, the module decodes the name of each E(TF_TOKEN_*) variable into a host (V(__) is a
        hyphen, then V(_) a dot, in any case) and compares it with the host, so a variable only ever serves
        the host it names. No variable names a host with a port or an IPv6 address; use E(TFE_TOKEN) or a
        credentials block for those. Host names with V(_) are not valid and are refused (see O(hostname)).
      - For an V(http://) O(hostname), Terraform's credentials (E(TF_TOKEN_*), credentials blocks and files)
        are never used, as they belong to the https host of that name. Set O(token) or E(TFE_TOKEN).
      - It must be the token alone. A token holding white space, a control character or a character outside
        ASCII is refused before any request, naming where it came from.
      - Never printed, in results, diffs, warnings or errors.
    type: str
    aliases: [tfe_token]
  validate_certs:
    description:
      - Whether to validate the server's TLS certificate.
      - If not set, a true value of E(TFE_SSL_SKIP_VERIFY) disables validation; otherwise V(true).
    type: bool
    aliases: [tfe_verify_tls]
  ca_path:
    description:
      - A CA bundle (PEM file) to validate the server's certificate with.
      - If not set, C(requests) uses E(REQUESTS_CA_BUNDLE) when set, else its own bundle.
    type: path
    aliases: [tfe_ca_bundle]
  timeout:
    description:
      - Seconds to wait for the server to connect and to answer, for each attempt.
    type: float
    default: 30
  max_retries:
    description:
      - How many times a request is retried after a 502, 503 or 504 or a connection error (exponential
        backoff with jitter).
      - A rate limit (HTTP 429) is retried whatever this count, waiting as C(Retry-After) or
        C(X-RateLimit-Reset) say, because the server says when to come back.
      - Waits add up to at most 60 seconds per request. V(0) disables every retry, 429 included.
    type: int
    default: 5
  allow_unverified_platform:
    description:
      - Go on when C(GET /api/v2/ping) cannot establish that the host is HCP Terraform (for example a
        proxy that strips the C(TFP-AppName) header), with a warning.
      - Never overrides a host that says it is Terraform Enterprise, where audit trail tokens do not exist
        and the same request would act on the organization's regular API token.
    type: bool
    default: false
  allow_insecure_http:
    description:
      - Allow an V(http://) O(hostname) that is not loopback, or a loopback one that a proxy from the environment
        carries. For lab proxies only.
      - The API token then crosses the network in clear text (the module warns), and it must come from
        O(token) or E(TFE_TOKEN), never from Terraform's credentials.
    type: bool
    default: false
attributes:
  action_group:
    description: Use C(group/tfe.audit.tfe) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - tfe.audit.tfe
requirements:
  - requests >= 2.28 (older releases turn TLS verification off when CURL_CA_BUNDLE is empty)
  - urllib3 >= 1.26.0
notes:
  - Module defaults for all modules of this collection can be set with the action group
    C(group/tfe.audit.tfe) in C(module_defaults).
"""

    # The organization option (tfe.audit.connection.organization); argument spec: organization_argument_spec().
    ORGANIZATION = r"""
options:
  organization:
    description:
      - Name of the organization (letters, digits, V(-) and V(_)), for example V(my-org).
      - If not set, the environment variable E(TFE_ORGANIZATION) is used.
    type: str
"""

    # What decides the token's life, for the modules that manage it (tfe.audit.connection.token, with
    # tfe.audit.connection.organization); argument spec: token_argument_spec().
    TOKEN = r"""
options:
  force_regenerate:
    description:
      - Generate a new token on every run, even if one exists. The old token stops working at once.
      - The task then always reports a change.
    type: bool
    default: false
  expired_at:
    description:
      - When the token expires, as an RFC 3339 date-time with a time zone offset or V(Z),
        for example V(2030-12-31T23:59:59Z). It is normalised to UTC and must lie in the future.
      - An existing token whose expiry differs (compared to the second) is regenerated, because
        the expiry of a token cannot be changed.
      - Mutually exclusive with O(lifetime). Without either, HCP Terraform applies its default (two years).
    type: str
  lifetime:
    description:
      - The lifetime of a token generated in this run, as a duration such as V(90d), V(12h), V(2w) or V(1d12h)
        (units V(w), V(d), V(h), V(m), V(s)); its expiry is then the time of the run plus O(lifetime).
      - O(lifetime) never causes a regeneration by itself; use O(rotate_before) to rotate.
      - Mutually exclusive with O(expired_at).
    type: str
  rotate_before:
    description:
      - Regenerate the token when it expires within this duration (for example V(30d)), or has already expired.
      - Combine with O(lifetime) for rotation, for example O(lifetime=90d) and O(rotate_before=30d) in a daily
        job gives a new token every 60 days.
    type: str
"""

    LOOKBACK = r"""
options:
  lookback:
    description:
      - HCP Terraform does not promise that an event is listed before every later one is; audit pipelines deliver
        late (AWS AppFabric documents up to 30 minutes). Each run (or poll) reads again the events of this long
        before the previous one (never before the newest event already delivered, when the organization has been
        quiet for longer) and recognises by id those it already delivered, so an event listed up to this late is
        delivered once. Costs one more request per O(page_size) events in that window.
      - A duration such as V(30m), V(2h) or V(1d); V(0) turns it off.
      - It needs a remembered position (a cursor or state file, or a position passed back); a first run reads from
        O(since) (or everything).
      - Clock skew between the controller and HCP Terraform counts against it.
    type: str
    default: 30m
"""
