#!/usr/bin/env python3
"""Runs the marked examples of the READMEs; tests/readme.sh explains the
format and sets the scene (clients, daemons, clean-up). Usage:
readme.py WORKDIR FILE...; env READY (usable tools), UPDATE=1, CI."""
import os
import re
import shutil
import socket
import subprocess
import sys
import time

MARK = re.compile(r'^<!-- test(?::\s*([a-z ]*?))?\s*-->$')
GAP = '\u2026'  # a line of its own: any number of lines left out
HEX = re.compile(r'\b[0-9a-f]{64}\b')
BIG = re.compile(r'\b[0-9]{5,}\b')  # sizes worth rewriting everywhere
CI = os.environ.get('CI') == 'true'
READY = set(os.environ.get('READY', '').split())
UPDATE = os.environ.get('UPDATE') == '1'
PORTS = {}
FAILED = []


def ok(msg):
    print('ok - ' + msg, flush=True)


def nok(msg):
    FAILED.append(msg)
    print('not ok - ' + msg, flush=True)


def diag(text):
    for line in text.rstrip('\n').split('\n'):
        print('# ' + line, file=sys.stderr)


# ------------------------------------------------------------ parsing
def parse(path):
    """The file's lines and its marked blocks: each a dict with the
    tools it needs and its commands (text, line, expected lines, and the
    index range of those lines in the file)."""
    lines = open(path, encoding='utf-8').read().split('\n')
    blocks, i = [], 0
    while i < len(lines):
        m = MARK.match(lines[i])
        if not m:
            i += 1
            continue
        fence = lines[i + 1] if i + 1 < len(lines) else ''
        if fence not in ('```console', '```sh'):
            nok('readme: %s:%d: a test marker must come right before a '
                '```console or ```sh block' % (path, i + 1))
            i += 1
            continue
        cmds, j = [], i + 2
        if fence == '```sh':  # a script: only its exit status counts
            while j < len(lines) and lines[j] != '```':
                j += 1
            cmds.append({'text': '\n'.join(lines[i + 2:j]), 'line': i + 3,
                         'exp': None, 'first': j, 'end': j})
            blocks.append({'file': path, 'line': i + 1, 'cmds': cmds,
                           'tools': set((m.group(1) or '').split())})
            i = j + 1
            continue
        while j < len(lines) and lines[j] != '```':
            if lines[j].startswith('$ '):
                start, text = j, [lines[j][2:]]
                while text[-1].endswith('\\') and j + 1 < len(lines):
                    j += 1
                    text.append(lines[j])
                cmds.append({'text': '\n'.join(text), 'line': start + 1,
                             'exp': [], 'first': j + 1})
            elif cmds:
                cmds[-1]['exp'].append(lines[j])
            j += 1
        for c in cmds:
            c['end'] = c['first'] + len(c['exp'])
        blocks.append({'file': path, 'line': i + 1, 'cmds': cmds,
                       'tools': set((m.group(1) or '').split())})
        i = j + 1
    return lines, blocks


# ------------------------------------------------------------ ports
def port(digit):
    """The free port that stands for 808<digit>."""
    if digit not in PORTS:
        while True:
            s = socket.socket()
            s.bind(('', 0))
            p = s.getsockname()[1]
            s.close()
            if p not in PORTS.values():
                break
        PORTS[digit] = p
    return PORTS[digit]


def sub(text):
    return re.sub(r'\b808([0-9])\b', lambda m: str(port(m.group(1))), text)


def unsub(text):
    for d, p in PORTS.items():
        text = re.sub(r'\b%d\b' % p, '808' + d, text)
    return text


# ------------------------------------------------------------ matching
def norm(line):
    line = line.replace('\r', '').rstrip()
    return 'Date: *' if line.startswith('Date: ') else line


def shape(line):
    return re.sub(r'[0-9]+', 'N', HEX.sub('H', norm(line)))


def align(exp, act, eq):
    """Pairs (expected index, actual index) matching every expected line
    but the gaps, in order, with nothing left over; None if impossible."""
    memo = {}

    def go(i, j):
        if (i, j) not in memo:
            memo[(i, j)] = step(i, j)
        return memo[(i, j)]

    def step(i, j):
        if i == len(exp):
            return [] if j == len(act) else None
        if exp[i] == GAP:
            for k in range(j, len(act) + 1):
                rest = go(i + 1, k)
                if rest is not None:
                    return rest
            return None
        if j < len(act) and eq(exp[i], act[j]):
            rest = go(i + 1, j + 1)
            return None if rest is None else [(i, j)] + rest
        return None

    sys.setrecursionlimit(10000)
    return go(0, 0)


def out_lines(text):
    lines = text.replace('\r', '').split('\n')
    return lines[:-1] if lines and lines[-1] == '' else lines


# ------------------------------------------------------------ running
class Server:
    """The server block's command in the background; its start-up lines."""

    def __init__(self, work, cmd):
        self.log = os.path.join(work, '.server.log')
        with open(self.log, 'w') as f:
            self.proc = subprocess.Popen(['bash', '-c', 'exec ' + sub(cmd)],
                                         cwd=work, stdout=subprocess.DEVNULL,
                                         stderr=f)
        self.banner = ''
        for _ in range(100):
            text = open(self.log).read()
            if 'listening on' in text:
                cut = text.index('\n', text.index('listening on')) + 1
                self.banner = text[:cut]
                break
            if self.proc.poll() is not None:
                self.banner = text
                break
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


PRELUDE = r'''exec 2>&1
set -o pipefail
qt_wait_port() {
	local i
	for i in $(seq 100); do
		curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/v2/" && return
		sleep 0.1
	done
}
'''
RC = re.compile(r'\n?@@qt-readme-rc ([0-9]+) ([0-9]+)\n')


def repo_copy(work):
    """The repository's tracked files, as they are, in a directory of
    their own: for blocks that say `repo` (they run `make` and the like,
    from the repository root)."""
    d = os.path.join(work, '.repo')
    if not os.path.isdir(d):
        names = subprocess.run(['git', 'ls-files', '-z'], check=True,
                               stdout=subprocess.PIPE).stdout
        for name in names.decode().split('\0'):
            if name and os.path.isfile(name):
                os.makedirs(os.path.join(d, os.path.dirname(name)),
                            exist_ok=True)
                shutil.copy2(name, os.path.join(d, name))
    return d


def run_block(work, block):
    """Each command's (exit status, output), or None for one never run."""
    if 'repo' in block['tools']:
        work = repo_copy(work)
    if block['cmds'] and block['cmds'][0]['exp'] is None:
        text = '(\nset -e\n%s\n)' % block['cmds'][0]['text']
        block = dict(block, cmds=[dict(block['cmds'][0], text=text)])
    script = [PRELUDE]
    for n, c in enumerate(block['cmds']):
        text = sub(c['text'])
        script.append(text + "\nprintf '\\n@@qt-readme-rc %d %%d\\n' $?\n"
                      % n)
        m = re.search(r'\brun -d\b.*PORT=([0-9]+)', text, re.S)
        if m:
            script.append('qt_wait_port %s\n' % m.group(1))
    try:
        r = subprocess.run(['bash', '-c', ''.join(script)], cwd=work,
                           stdout=subprocess.PIPE, timeout=300)
        out = r.stdout.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b'').decode('utf-8', 'replace')
        diag('block at %s:%d timed out' % (block['file'], block['line']))
    results, pos = [None] * len(block['cmds']), 0
    for m in RC.finditer(out):
        results[int(m.group(1))] = (int(m.group(2)), out[pos:m.start()])
        pos = m.end()
    return results


# ------------------------------------------------------------ checking
def check(cmd, where, rc, output, edits, values):
    """One check line for a command; in update mode, the new expected
    lines into edits and the changed digests and sizes into values."""
    if cmd['exp'] is None:
        title = '%s: ```sh block runs (exit status %d)' % (where, rc)
        (ok if rc == 0 else nok)('readme: ' + title)
        if rc:
            diag(output)
        return
    exp = [sub(x) for x in cmd['exp']]
    act = out_lines(output)
    title = '%s: $ %s' % (where, cmd['text'].split('\n')[0][:72])
    if rc == 0 and align([norm(x) for x in exp], [norm(x) for x in act],
                         lambda a, b: a == b) is not None:
        ok('readme: ' + title)
        return
    if UPDATE and rc == 0 and update(cmd, exp, act, edits, values):
        ok('readme: %s (output rewritten from this build)' % title)
        return
    nok('readme: ' + title + ('' if rc == 0 else ' (exit status %d)' % rc))
    diag('expected:\n' + '\n'.join(exp) + '\ngot:\n' + '\n'.join(act))


def update(cmd, exp, act, edits, values):
    pairs = align(exp, act, lambda a, b: shape(a) == shape(b))
    if pairs is None:
        if GAP in exp:
            return False
        new = [unsub(norm(a)) for a in act]
    else:
        new = list(cmd['exp'])
        for i, j in pairs:
            if norm(exp[i]) != norm(act[j]):
                new[i] = unsub(act[j].replace('\r', '').rstrip())
                for pat in (HEX, BIG):
                    for a, b in zip(pat.findall(exp[i]), pat.findall(act[j])):
                        if a != b:
                            values[a] = b
    edits.append((cmd['first'], cmd['end'], new))
    return True


def banner_values(old, new, values):
    """Digests and the layer size, by their labels in the start-up lines
    (robust to other changes there)."""
    lab = re.compile(r'^ *(docker manifest|oci manifest|config|layer) +'
                     r'sha256:([0-9a-f]{64})(?: \(([0-9]+) bytes\))?', re.M)
    was = {m.group(1): m.groups()[1:] for m in lab.finditer(old)}
    for m in lab.finditer(new):
        for a, b in zip(was.get(m.group(1), ()), m.groups()[1:]):
            if a and b and a != b:
                values[a] = b


def rewrite(path, lines, edits, values):
    for first, end, new in sorted(edits, reverse=True):
        lines[first:end] = new
    text = '\n'.join(lines)
    for a, b in values.items():
        text = re.sub(r'\b%s\b' % a, b, text)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    print('# readme: rewrote %s: %d outputs, %d values' %
          (path, len(edits), len(values)), file=sys.stderr)


def main():
    work, files = sys.argv[1], sys.argv[2:]
    parsed = {f: parse(f) for f in files}
    blocks = [b for f in files for b in parsed[f][1]]
    servers = [b for b in blocks if 'server' in b['tools']]
    if len(servers) != 1 or len(servers[0]['cmds']) != 1:
        nok('readme: exactly one `server` block with one command')
        return 1
    sb = servers[0]
    server = Server(work, sb['cmds'][0]['text'])
    m = re.search(r'^ *config +(sha256:[0-9a-f]{64})', server.banner, re.M)
    if m:
        open(os.path.join(work, '.config-digest'), 'w').write(m.group(1))
    edits = {f: [] for f in files}
    values = {}
    try:
        banner_values('\n'.join(sb['cmds'][0]['exp']), server.banner, values)
        if UPDATE and values:
            # The new digests into the commands too, before they run.
            for f in files:
                rewrite(f, parsed[f][0], [], values)
            parsed = {f: parse(f) for f in files}
            blocks = [b for f in files for b in parsed[f][1]]
            sb = [b for b in blocks if 'server' in b['tools']][0]
            values = {}
        check(sb['cmds'][0], '%s:%d' % (sb['file'], sb['cmds'][0]['line']),
              0 if 'listening on' in server.banner else 1, server.banner,
              edits[sb['file']], values)
        for b in blocks:
            if b is sb:
                continue
            need = sorted(b['tools'] - READY)
            if need:
                msg = 'readme: %s:%d: block needs %s' % (
                    b['file'], b['line'], ' '.join(need))
                (nok if CI else lambda x: print('skip - ' + x))(
                    msg + ' (not usable here)')
                continue
            for c, res in zip(b['cmds'], run_block(work, b)):
                where = '%s:%d' % (b['file'], c['line'])
                if res is None:
                    nok('readme: %s: $ %s (never ran)' % (where, c['text']))
                else:
                    check(c, where, res[0], res[1], edits[b['file']], values)
    finally:
        server.stop()
    if UPDATE:
        for f in files:
            if edits[f] or values:
                rewrite(f, parsed[f][0], edits[f], values)
    return 1 if FAILED else 0


if __name__ == '__main__':
    sys.exit(main())
