# -*- coding: utf-8 -*-
"""The head every play of the system tests shares: this controller, with the Python that runs ansible-playbook.

A play that names ``localhost`` would otherwise pick the interpreter Ansible discovers (on a machine with pyenv,
a shim for a Python that may not be installed), so each play sets ``ansible_python_interpreter``. The head is
written here once, by PyYAML, which quotes what needs it.
"""

import yaml


def localhost_play(name, tasks, url=None, play_vars=None, **defaults):
    """A play named ``name`` on localhost running ``tasks`` (YAML text, indented four spaces as a play's
    tasks are), with ``play_vars``; given ``url``, module_defaults point the tfe.audit modules at it and
    give them ``defaults`` too (``organization="acme"``)."""
    play = {"name": name, "hosts": "localhost", "gather_facts": False,
            "vars": dict({"ansible_python_interpreter": "{{ ansible_playbook_python }}"}, **(play_vars or {}))}
    if url:
        play["module_defaults"] = {"group/tfe.audit.tfe": dict({"hostname": url}, **defaults)}
    head = yaml.safe_dump([play], sort_keys=False, width=1000)
    return head + "  tasks:\n" + tasks.strip("\n") + "\n"
