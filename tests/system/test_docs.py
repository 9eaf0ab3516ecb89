"""The user documentation's YAML: docs/awx/*.yml load and the AWX credential type is well formed; every
```yaml block in docs/*.md loads; the credential type shown in docs/awx.md is the one in docs/awx/.
No network, no ansible-playbook run."""

import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
AWX = DOCS / "awx"
FIELD_TYPES = {"string", "boolean"}
ENV_TEMPLATE = re.compile(r"^\{\{\s*(\w+)\s*\}\}$")


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def yaml_blocks(markdown):
    """The ```yaml blocks of a markdown file, dedented (blocks inside list items are indented)."""
    blocks = []
    for match in re.finditer(r"^( *)```yaml\n(.*?)^\1```", markdown, re.S | re.M):
        indent = len(match.group(1))
        blocks.append("\n".join(line[indent:] for line in match.group(2).splitlines()))
    return blocks


@pytest.mark.parametrize("path", sorted(AWX.glob("*.yml")), ids=lambda p: p.name)
def test_awx_files_are_yaml(path):
    assert load(path) is not None


def check_inputs(inputs):
    assert set(inputs) <= {"fields", "required"}, inputs
    ids = []
    for field in inputs["fields"]:
        assert set(field) >= {"id", "type", "label"}, field
        assert re.match(r"^[a-z_][a-z0-9_]*$", field["id"]), field
        assert field["type"] in FIELD_TYPES, field
        ids.append(field["id"])
    assert len(ids) == len(set(ids)), "duplicate field ids: %s" % ids
    assert set(inputs.get("required", [])) <= set(ids), "required names an unknown field"
    return {field["id"]: field for field in inputs["fields"]}


def check_injectors(injectors, fields):
    assert set(injectors) <= {"env", "extra_vars", "file"}, injectors
    for var, template in injectors["env"].items():
        match = ENV_TEMPLATE.match(template)
        assert match, "%s: %r is not a plain {{ field }} template" % (var, template)
        assert match.group(1) in fields, "%s refers to the unknown field %s" % (var, match.group(1))
    return {var: ENV_TEMPLATE.match(t).group(1) for var, t in injectors["env"].items()}


def test_tfe_credential_type():
    fields = check_inputs(load(AWX / "credential-type-inputs.yml"))
    inputs = load(AWX / "credential-type-inputs.yml")
    env = check_injectors(load(AWX / "credential-type-injectors.yml"), fields)
    # What the modules read: TFE_HOSTNAME and TFE_TOKEN, the token a required secret.
    assert set(env) == {"TFE_HOSTNAME", "TFE_TOKEN"}
    token_field = fields[env["TFE_TOKEN"]]
    assert token_field.get("secret") is True
    assert env["TFE_TOKEN"] in inputs["required"]
    assert fields[env["TFE_HOSTNAME"]].get("secret") is not True
    assert fields[env["TFE_HOSTNAME"]].get("default") == "app.terraform.io"


def test_awx_md_shows_the_files():
    blocks = [yaml.safe_load(block) for block in yaml_blocks((DOCS / "awx.md").read_text(encoding="utf-8"))]
    for name in ("credential-type-inputs.yml", "credential-type-injectors.yml", "rotate-audit-trail-token.yml"):
        assert load(AWX / name) in blocks, "docs/awx.md does not show docs/awx/%s as it is" % name


def test_awx_md_vault_credential_type():
    blocks = [yaml.safe_load(b) for b in yaml_blocks((DOCS / "awx.md").read_text(encoding="utf-8"))]
    inputs = next(b for b in blocks if isinstance(b, dict) and "vault_token" in str(b.get("fields")))
    injectors = next(b for b in blocks if isinstance(b, dict) and "VAULT_TOKEN" in b.get("env", {}))
    env = check_injectors(injectors, check_inputs(inputs))
    assert set(env) == {"VAULT_ADDR", "VAULT_TOKEN"}


def test_rotation_playbook_uses_the_role():
    play = load(AWX / "rotate-audit-trail-token.yml")[0]
    role = play["roles"][0]
    assert role["role"] == "tfe.audit.audit_trail_token"
    assert role["vars"]["audit_trail_token_store"] == "hashi_vault"
    specs = load(ROOT / "roles" / "audit_trail_token" / "meta" / "argument_specs.yml")
    known = set(specs["argument_specs"]["main"]["options"])
    assert set(role["vars"]) <= known, set(role["vars"]) - known


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_markdown_yaml_blocks_load(doc):
    for block in yaml_blocks(doc.read_text(encoding="utf-8")):
        yaml.safe_load(block)


def test_requires_ansible_is_what_the_matrix_tests():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    cells = re.search(r"^MATRIX \?= (.*)$", makefile, re.M).group(1).split()
    minors = sorted({tuple(int(p) for p in cell.split("@")[0].split(".")[:2]) for cell in cells})
    low, high = minors[0], minors[-1]
    assert minors == [(low[0], m) for m in range(low[1], high[1] + 1)], "the matrix skips a core: %s" % minors
    runtime = load(ROOT / "meta" / "runtime.yml")
    assert runtime["requires_ansible"] == ">=%d.%d.0,<%d.%d.0" % (low + (high[0], high[1] + 1))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for cell in cells:
        core, python = cell.split("@")
        assert re.search(r"^\| %s \(%s\) \| %s \|" % (re.escape(core.rsplit(".", 1)[0]), re.escape(core), re.escape(python)),
                         readme, re.M), "README's support matrix lacks %s" % cell
