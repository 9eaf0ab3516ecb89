# Appended to the conf.py that `antsibull-docs sphinx-init` writes (tests/ci/docs-build.sh).
# CI has no network: no intersphinx inventories. References into the Ansible documentation that the
# generated pages use are resolved to docs.ansible.com here; any other unresolved reference still warns
# (and -W fails the build).
from docutils import nodes

intersphinx_mapping = {}

ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/latest/'
ANSIBLE_LABELS = {
    'common_return_values': 'reference_appendices/common_return_values.html',
    'action_plugins': 'plugins/action.html',
    'ansible_configuration_settings': 'reference_appendices/config.html',
}


def _ansible_reference(app, env, node, contnode):  # pylint: disable=unused-argument
    target = node.get('reftarget', '')
    if node.get('reftype') == 'ref' and target in ANSIBLE_LABELS:
        url = ANSIBLE_DOCS + ANSIBLE_LABELS[target]
    elif node.get('reftype') == 'envvar' and target.startswith('ANSIBLE_'):
        url = ANSIBLE_DOCS + 'reference_appendices/config.html#envvar-' + target
    else:
        return None
    reference = nodes.reference('', '', internal=False, refuri=url)
    reference += contnode
    return reference


def setup(app):
    app.connect('missing-reference', _ansible_reference)
