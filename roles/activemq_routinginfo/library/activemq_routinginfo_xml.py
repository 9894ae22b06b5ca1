#!/usr/bin/python3
# -*- coding: utf-8 -*-
# Role-local module of roles/activemq_routinginfo: patches an existing activemq.xml in place, idempotently.
# ansible-core has no XML module (community.general.xml is not available), and rewriting the document with
# an XML library would lose the operator's comments and layout. So this module edits text, block by block:
# every block it owns sits between markers
#     <!-- BEGIN paas-rproxy:NAME:VARIANT (managed by Ansible role activemq_routinginfo) -->
#     <!-- END paas-rproxy:NAME -->
# A block whose markers exist is replaced in place (updates, no duplicates). A new block goes INSIDE the
# deepest element of its path the operator already has (e.g. a <transportConnector> into <transportConnectors>,
# a plugin into <plugins>, an <authenticationUser> into the simpleAuthenticationPlugin's <users>), wrapped in
# the elements that are missing; with none of them, before </broker>. The marker records that depth so an
# update re-renders the same shape. The result must be
# well-formed XML (checked with the standard library parser) before it is written atomically; the operator's
# file is never replaced wholesale. state=absent removes the blocks.
from __future__ import annotations

import os
import re
import tempfile
import xml.dom.minidom

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: activemq_routinginfo_xml
short_description: Idempotently patch marked blocks into an existing activemq.xml
version_added: "0.1.0"
author: paas-rproxy
description:
  - Adds, replaces or removes blocks of XML in an existing ActiveMQ configuration file, each between a BEGIN and an
    END comment naming it, so the rest of the operator's file is never touched and a second run changes nothing.
  - A block goes inside the deepest element of its O(blocks[].path) the file already has (below C(<broker>)),
    wrapped in the missing deeper elements; with none of them, before C(</broker>).
  - The result must parse as XML, or the file is left as it was and the module fails. The file is replaced
    atomically (temporary file + rename) with its mode and owner.
options:
  path:
    description: The activemq.xml to patch (must exist).
    type: path
    required: true
  blocks:
    description:
      - The blocks, in order. Each is a dict with C(name) (the marker), C(path) (a list of element names below
        C(<broker>), for example C([plugins, simpleAuthenticationPlugin, users])), C(content) (the XML text) and
        optionally C(skip_if).
      - C(skip_if) is a regular expression; when it matches the file outside this block, the block is not added
        (for example the operator already has a STOMP connector).
    type: list
    elements: dict
    required: true
  state:
    description: C(present) writes the blocks, C(absent) removes them (their markers included).
    type: str
    choices: [present, absent]
    default: present
  backup:
    description: Keep a timestamped copy of the file before changing it.
    type: bool
    default: false
attributes:
  check_mode:
    description: Reports whether the file would change, writes nothing.
    support: full
  diff_mode:
    description: Returns the whole file before and after.
    support: full
  platform:
    platforms: posix
notes:
  - The diff shows the whole file, blocks included; a block holding a password shows it in clear text with C(--diff).
"""

EXAMPLES = r"""
- name: A STOMP connector for the Routing SPI, unless the operator already has one
  activemq_routinginfo_xml:
    path: /etc/activemq/instances-enabled/main/activemq.xml
    backup: true
    blocks:
      - name: stomp-connector
        path: [transportConnectors]
        content: <transportConnector name="stomp" uri="stomp://0.0.0.0:61613"/>
        skip_if: '<transportConnector[^>]*uri="stomp(\+[a-z]+)?://[^"]*:61613\b'

- name: Remove the blocks again
  activemq_routinginfo_xml:
    path: /etc/activemq/instances-enabled/main/activemq.xml
    state: absent
    blocks:
      - {name: stomp-connector, path: [transportConnectors], content: ""}
"""

RETURN = r"""
path:
  description: The file patched.
  type: str
  returned: always
  sample: /etc/activemq/instances-enabled/main/activemq.xml
backup_file:
  description: The copy made before the change.
  type: str
  returned: changed and O(backup) is true
  sample: /etc/activemq/instances-enabled/main/activemq.xml.1234.2026-12-07@12:00:00~
diff:
  description: The whole file before and after (with C(--diff)).
  type: dict
  returned: diff mode
"""

BEGIN = '<!-- BEGIN paas-rproxy:%s:d%d (managed by Ansible role activemq_routinginfo) -->'
END = '<!-- END paas-rproxy:%s -->'


def marker_re(name):
    return re.compile(
        r'(?P<indent>[ \t]*)<!-- BEGIN paas-rproxy:' + re.escape(name) +
        r':d(?P<depth>\d+) \(managed by Ansible role activemq_routinginfo\) -->.*?<!-- END paas-rproxy:' +
        re.escape(name) + r' -->[ \t]*\n?', re.S)


def comment_spans(text):
    return [(m.start(), m.end()) for m in re.finditer(r'<!--.*?-->', text, re.S)]


def find_tag(text, name, start, end, closing=False):
    """First real (not commented) opening or closing tag of element `name` (any ns prefix) in [start, end)."""
    spans = comment_spans(text)
    pat = re.compile(r'<%s(?:[\w.-]+:)?%s(?=[\s/>])[^>]*>' % ('/' if closing else '', re.escape(name)))
    for m in pat.finditer(text, start, end):
        if not any(a <= m.start() < b for a, b in spans):
            return m
    return None


def element_span(text, name, lo, hi):
    """(open_match, inner_start, inner_end) of the first <name>...</name> in [lo, hi), or None."""
    o = find_tag(text, name, lo, hi)
    if not o:
        return None
    if o.group(0).endswith('/>'):
        raise ValueError('<%s/> is written as an empty element: write it as <%s>...</%s> first' % (name, name, name))
    c = find_tag(text, name, o.end(), hi, closing=True)
    if not c:
        raise ValueError('<%s> has no closing tag' % name)
    return o, o.end(), c.start()


def line_indent(text, pos):
    ls = text.rfind('\n', 0, pos) + 1
    m = re.match(r'[ \t]*', text[ls:])
    return m.group(0) if m else ''


def indent_lines(block, indent):
    return ''.join((indent + line if line.strip() else '') + '\n' for line in block.split('\n'))


def wrap(content, names):
    """content wrapped in the elements `names` (outermost first), indented 4 per level."""
    body = content.strip('\n')
    for n in reversed(names):
        body = '<%s>\n%s\n</%s>' % (n, '\n'.join('    ' + l if l.strip() else l for l in body.split('\n')), n)
    return body


def render(name, depth, blk):
    inner = wrap(blk['content'], blk['path'][depth:])
    return '\n'.join([BEGIN % (name, depth), inner, END % name])


def apply_block(text, blk, state):
    name = blk['name']
    rx = marker_re(name)
    existing = rx.search(text)
    if state == 'absent':
        return rx.sub('', text) if existing else text
    if blk.get('skip_if'):
        outside = rx.sub('', text)
        spans_removed = re.sub(r'<!--.*?-->', '', outside, flags=re.S)
        if re.search(blk['skip_if'], spans_removed):
            return rx.sub('', text) if existing else text
    if existing:
        depth = int(existing.group('depth'))
        new = indent_lines(render(name, depth, blk), existing.group('indent'))
        return text[:existing.start()] + new + text[existing.end():]
    broker = element_span(text, 'broker', 0, len(text))
    if not broker:
        raise ValueError('no <broker> element found')
    lo, hi = broker[1], broker[2]
    depth = 0
    anchor = None
    for n in blk['path']:
        sp = element_span(text, n, lo, hi)
        if not sp:
            break
        anchor = sp[0]
        lo, hi = sp[1], sp[2]
        depth += 1
    if anchor is not None:
        # right after the opening tag of the deepest existing element
        indent = line_indent(text, anchor.start()) + '    '
        new = indent_lines(render(name, depth, blk), indent)
        nl = text.find('\n', anchor.end())
        if nl >= 0 and not text[anchor.end():nl].strip():
            return text[:nl + 1] + new + text[nl + 1:]
        return text[:anchor.end()] + '\n' + new + text[anchor.end():]
    # none of the path exists: before </broker>
    close_at = broker[2]
    ls = text.rfind('\n', 0, close_at) + 1
    indent = line_indent(text, close_at) + '    '
    new = indent_lines(render(name, 0, blk), indent)
    if text[ls:close_at].strip():
        return text[:close_at] + '\n' + new + text[close_at:]
    return text[:ls] + new + text[ls:]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            blocks=dict(type='list', elements='dict', required=True),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            backup=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    path = module.params['path']
    if not os.path.isfile(path):
        module.fail_json(msg='%s does not exist: this role patches an existing ActiveMQ configuration' % path)
    with open(path, 'r', encoding='utf-8') as f:
        before = f.read()
    text = before
    try:
        for blk in module.params['blocks']:
            for k in ('name', 'path', 'content'):
                if k not in blk:
                    module.fail_json(msg='block without %s: %r' % (k, blk))
            text = apply_block(text, blk, module.params['state'])
        xml.dom.minidom.parseString(text.encode('utf-8'))
    except Exception as e:  # noqa: BLE001 - any failure leaves the file as it was
        module.fail_json(msg='cannot patch %s: %s' % (path, e))
    changed = text != before
    result = dict(changed=changed, path=path)
    if module._diff:
        result['diff'] = dict(before=before, after=text, before_header=path, after_header=path)
    if changed and not module.check_mode:
        if module.params['backup']:
            result['backup_file'] = module.backup_local(path)
        st = os.stat(path)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.activemq.xml.')
        try:
            with os.fdopen(fd, 'w', encoding='utf-8') as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, st.st_mode & 0o7777)
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError:
                pass
            os.rename(tmp, path)
        except Exception:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    module.exit_json(**result)


if __name__ == '__main__':
    main()
