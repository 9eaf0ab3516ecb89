"""Write the get-pip stand-in that ansible-test needs on machines without CI file host access.

ansible-test bootstraps every virtual environment it creates by running
https://ci-files.testing.ansible.com/ansible-test/get-pip-<ver>.py, cached as
~/.ansible/test/cache/get_pip_<ver>.py. That host is unreachable here, so we place
a stand-in at the cache path which uses the interpreter's own ``ensurepip`` and then
``pip install --upgrade <the packages ansible-test asked for>`` (e.g. ``pip==24.2``),
which pip resolves through the machine's pip config files (ansible-test strips most
``PIP_*`` environment variables, the config files still apply).

Run it with the Python of a venv that has ansible-core installed:
    .venv/bin/python tests/ci/write-get-pip.py
It reads the pip version from that ansible-test and prints the path it wrote.
Idempotent: rewrites the file only when its content differs.
"""

import importlib.util
import os
import re
import sys

STANDIN = '''\
"""get-pip stand-in written by tfe.audit tests/ci/write-get-pip.py (no network to ci-files.testing.ansible.com)."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'],
                      stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--upgrade', '--quiet'] + args)
'''


def pip_version():
    spec = importlib.util.find_spec('ansible_test')
    if spec is None or not spec.submodule_search_locations:
        sys.exit('write-get-pip: ansible_test is not importable by %s' % sys.executable)
    path = os.path.join(list(spec.submodule_search_locations)[0], '_internal', 'python_requirements.py')
    with open(path, encoding='utf-8') as f:
        text = f.read()
    match = re.search(r"\bpip\s*=\s*'([0-9][0-9.]*)'", text)
    if not match:
        sys.exit('write-get-pip: cannot find the pip version in %s' % path)
    return match.group(1)


def main():
    version = pip_version()
    cache = os.path.expanduser('~/.ansible/test/cache')
    os.makedirs(cache, exist_ok=True)
    target = os.path.join(cache, 'get_pip_%s.py' % version.replace('.', '_'))
    try:
        with open(target, encoding='utf-8') as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    if current != STANDIN:
        tmp = target + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(STANDIN)
        os.replace(tmp, target)
    print(target)


if __name__ == '__main__':
    main()
