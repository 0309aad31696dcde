#!/usr/bin/python3
"""compat.py - the deterministic parts of the differential harness (called by compat.sh).

  compat.py normalize TRANSCRIPT WORKDIR MODULE    -> normalised transcript on stdout
  compat.py check SCENARIO DIFF EXPECTED_DIR KNOWN [--update]
  compat.py lint                                   -> orphaned documentation

normalize: replaces what legitimately differs between two runs or two modules (the
module's path and identity, the folder, slot ids, serials, random hex, UUIDs, dates,
handles) with placeholders. Random values are numbered by first appearance (HEX#1,
HEX#2...), not erased, so that relations survive: a public and a private key that share
an ID still share a placeholder, and an ID that changes still shows as a change.

check: compares a scenario's normalised diff (backend -> cmkp11) with the expected one
(EXPECTED_DIR/SCENARIO.diff) and with its documentation (KNOWN, one line per hunk:
`scenario hunk-hash item reason`). Any hunk not documented fails, and so does a
documented hunk that no longer occurs, so the list can only shrink as fixes land.
"""
import hashlib
import os
import re
import sys


class Numberer:
    """Maps each distinct volatile value to KIND#n, n by first appearance."""

    def __init__(self):
        self.seen = {}

    def __call__(self, kind, value):
        key = (kind, value)
        if key not in self.seen:
            self.seen[key] = '%s#%d' % (kind, sum(1 for k in self.seen if k[0] == kind) + 1)
        return self.seen[key]


def canon_hex(text):
    """The bytes of a hex value however a client printed it (plain, colons, %XX)."""
    return re.sub(r'[^0-9a-f]', '', text.lower())


# Module and token identity: what the two modules rightly report differently about
# themselves. The harness compares behaviour, not names, versions or serial numbers.
IDENTITY = [
    (re.compile(r'^(\s*(?:token manufacturer|token model|serial num|hardware version|firmware version)\s*:).*$'), r'\1 <identity>'),
    (re.compile(r'^((?:Manufacturer|Library)\s{2,}).*$'), r'\1<identity>'),
    (re.compile(r'^(\s*(?:Manufacturer|Model|Serial|Hardware version|Firmware version|Library description|Library manufacturer|Library version)\s*:).*$', re.I), r'\1 <identity>'),
    (re.compile(r'\b(model|manufacturer|serial|library-description|library-manufacturer|library-version|slot-description|slot-manufacturer|slot-id)=[^;\s]*'), r'\1=<identity>'),
    (re.compile(r'^(Slot\b[^(]*) \(0x[0-9a-f]+\): .*$'), r'\1 (<slot>): <slot description>'),
    (re.compile(r'(with a present token) \(0x[0-9a-f]+\)'), r'\1 (<slot>)'),
    (re.compile(r'(in slot) "[^"]*"'), r'\1 "<slot description>"'),
]

UUID = re.compile(r'\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b')
# Random byte strings: 16 bytes or more (IDs made by the module or by pkcs11-tool from
# the public key, EC points, digests of random keys). IDs a scenario gives (01, 0a) are
# shorter and stay as they are, so a module that changes them shows.
HEXES = [
    re.compile(r'(?:%[0-9A-Fa-f]{2}){16,}'),
    re.compile(r'\b(?:[0-9a-fA-F]{2}:){15,}[0-9a-fA-F]{2}\b'),
    re.compile(r'(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])'),
]
DATES = [
    re.compile(r'\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?Z?'),
    re.compile(r'\b[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}(?: GMT| UTC)?'),
]
# openssl -text dumps of random key material: a run of lines of colon-separated bytes
# becomes one line, whatever its length (a leading 00: comes and goes with the value).
HEXDUMP_LINE = re.compile(r'^\s+(?:[0-9a-fA-F]{2}:)+[0-9a-fA-F]{0,2}$')
# OpenSSL prefixes each error line with its thread id.
OPENSSL_ERROR = re.compile(r'^[0-9A-F]{8,16}:error:')
PROGRESS = re.compile(r'^[.+*\s]+$')
HANDLE = re.compile(r'\b(handle|hObject|hKey)([ =:]+)(0x[0-9a-fA-F]+|\d+)', re.I)


# A listing's object blocks: pkcs11-tool's "Private Key Object; EC" and p11tool's
# "Object 3:", each followed by its indented lines.
OBJECT_HEADER = re.compile(r'^(?:(?:Private Key|Public Key|Secret Key|Certificate|Data|Profile) Object\b|Object \d+:$|Data object \d+$|Slot \d+ \(0x[0-9a-f]+\): |< *\d+> )')


def _mask(text):
    """The block with its random values hidden: the order key of a listing."""
    text = re.sub(r'^Slot \d+ \(0x[0-9a-f]+\): .*$', 'Slot', text, flags=re.M)
    for rx, rep in IDENTITY:
        text = '\n'.join(rx.sub(rep, line) for line in text.split('\n'))
    for rx in [UUID] + HEXES:
        text = rx.sub('X', text)
    return text


def sort_listings(lines):
    """Sorts each run of object blocks in a step's output.

    A module returns found objects in an order of its own (SoftHSMv2's follows pointer
    and file-name order, which changes from run to run); PKCS#11 promises none. The
    harness compares what is listed, not the order, so runs of object blocks are put in
    the order of their text, random values masked. p11tool's running "Object N:" number
    goes with the order, so it is dropped, as is certutil -K's "< N>".
    The same holds for the slots pkcs11-tool lists (SoftHSMv2 orders them by token).
    """
    result, i = [], 0
    while i < len(lines):
        if not OBJECT_HEADER.match(lines[i]):
            result.append(lines[i])
            i += 1
            continue
        blocks = []
        while i < len(lines) and OBJECT_HEADER.match(lines[i]):
            block = [re.sub(r'^(Object \d+:|Data object \d+)$', lambda m: re.sub(r' \d+', '', m.group(1)), lines[i])]
            block[0] = re.sub(r'^Slot \d+ ', 'Slot ', block[0])
            block[0] = re.sub(r'^< *\d+> ', '<n> ', block[0])
            i += 1
            while i < len(lines) and (lines[i] == '' or lines[i][0] in ' \t'):
                block.append(lines[i])
                i += 1
            blocks.append(block)
        blocks.sort(key=lambda b: _mask('\n'.join(b)))
        for b in blocks:
            result.extend(b)
    return result


def normalize(path, workdir, module):
    num = Numberer()
    out = []
    with open(path, encoding='utf-8', errors='backslashreplace') as f:
        lines = sort_listings(f.read().splitlines())
    in_pem = False
    for line in lines:
        # The body of a PEM block of random material (a public key, a certificate with
        # a random key): one line, so that only its kind shows.
        if line.startswith('-----BEGIN '):
            in_pem = True
            out.append(line)
            out.append('<pem body>')
            continue
        if in_pem:
            if line.startswith('-----END '):
                in_pem = False
                out.append(line)
            continue
        # OpenSSL's key-generation progress dots.
        if line and PROGRESS.match(line):
            if out and out[-1] == '<progress>':
                continue
            out.append('<progress>')
            continue
        if HEXDUMP_LINE.match(line):
            if out and out[-1] == '    <hex dump>':
                continue
            out.append('    <hex dump>')
            continue
        # Longest first: the folder holds the module's config, and may hold the module.
        # The harness's own folder (PYTHONPATH, tls-pair.sh) depends on the checkout.
        here = os.path.dirname(os.path.abspath(__file__))
        for literal, name in sorted([(workdir, 'WORK'), (module, 'MODULE'), (here, 'COMPAT')], key=lambda p: -len(p[0])):
            if literal:
                line = line.replace(literal, name)
        line = re.sub(r'/tmp/cmkp11-compat\.[A-Za-z0-9]+', 'TMP', line)
        for rx, rep in IDENTITY:
            line = rx.sub(rep, line)
        line = UUID.sub(lambda m: num('UUID', m.group(0).lower()), line)
        for rx in HEXES:
            line = rx.sub(lambda m: num('HEX', canon_hex(m.group(0))), line)
        for rx in DATES:
            line = rx.sub('DATE', line)
        line = OPENSSL_ERROR.sub('<thread>:error:', line)
        line = HANDLE.sub(lambda m: m.group(1) + m.group(2) + num('HANDLE', m.group(3)), line)
        out.append(line)
    sys.stdout.write('\n'.join(out) + ('\n' if out else ''))


def hunks(diff_text):
    """The hunks of a unified diff whose @@ headers were reduced to '@@'."""
    result, cur = [], None
    for line in diff_text.splitlines(keepends=True):
        if line.startswith('@@'):
            cur = []
            result.append(cur)
        elif cur is not None:
            cur.append(line)
    return [''.join(h) for h in result]


def hunk_hash(text):
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]


def read_known(path):
    entries = []
    with open(path, encoding='utf-8') as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip('\n')
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            parts = line.split(None, 3)
            if len(parts) < 4:
                entries.append((n, parts[0], parts[1] if len(parts) > 1 else '', '?', ''))
                continue
            entries.append((n, parts[0], parts[1], parts[2], parts[3]))
    return entries


def check(scenario, diff_path, expected_dir, known_path, update):
    with open(diff_path, encoding='utf-8') as f:
        actual = f.read()
    expected_path = os.path.join(expected_dir, scenario + '.diff')
    expected = None
    if os.path.exists(expected_path):
        with open(expected_path, encoding='utf-8') as f:
            expected = f.read()
    known = read_known(known_path)
    mine = [e for e in known if e[1] == scenario]
    actual_hunks = {hunk_hash(h): h for h in hunks(actual)}

    if update:
        if actual:
            with open(expected_path, 'w', encoding='utf-8') as f:
                f.write(actual)
        elif os.path.exists(expected_path):
            os.remove(expected_path)
        # Keep the documented lines still true, drop the stale ones, add the new hunks
        # as TODO lines (which fail until someone gives them an item and a reason).
        with open(known_path, encoding='utf-8') as f:
            lines = f.read().splitlines()
        kept = []
        for line in lines:
            p = line.split(None, 3)
            if line.strip() and not line.lstrip().startswith('#') and p[0] == scenario \
                    and (len(p) < 2 or p[1] not in actual_hunks):
                print('compat: %s: dropped (no longer occurs): %s' % (scenario, line))
                continue
            kept.append(line)
        have = {e[2] for e in mine}
        for h in actual_hunks:
            if h not in have:
                line = '%-28s %s  ?  TODO: say why, and which issue-17 item' % (scenario, h)
                print('compat: %s: added: %s' % (scenario, line))
                kept.append(line)
        with open(known_path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(kept) + '\n')
        return 0

    problems = []
    documented = {}
    for n, _, h, item, reason in mine:
        if item == '?' or not reason or reason.startswith('TODO'):
            problems.append('%s:%d: hunk %s has no issue-17 item or no reason' % (known_path, n, h))
        documented[h] = (item, reason)
    for h, text in actual_hunks.items():
        if h not in documented:
            problems.append('UNDOCUMENTED difference (hunk %s):\n%s' % (h, text.rstrip('\n')))
    for h, (item, reason) in documented.items():
        if h not in actual_hunks:
            problems.append('STALE: documented difference %s (item %s: %s) no longer occurs;'
                            ' remove its line and update expected/%s.diff' % (h, item, reason, scenario))
    if (expected or '') != actual:
        problems.append('the diff is not expected/%s.diff (%s)' % (
            scenario, 'absent' if expected is None else 'different'))
    for h, (item, reason) in documented.items():
        if h in actual_hunks:
            print('compat: %s: known difference %s (issue 17 item %s): %s' % (scenario, h, item, reason))
    for p in problems:
        print('compat: %s: %s' % (scenario, p))
    return 1 if problems else 0


def lint(here):
    """Orphans: documentation of a scenario that no longer exists is never checked."""
    scen = {os.path.basename(f)[:-3] for f in os.listdir(os.path.join(here, 'scenarios')) if f.endswith('.sh')}
    problems = []
    for f in sorted(os.listdir(os.path.join(here, 'expected'))):
        if f.endswith('.diff') and f[:-5] not in scen:
            problems.append('expected/%s: no scenario %s' % (f, f[:-5]))
    for n, sc, h, item, reason in read_known(os.path.join(here, 'known-differences.txt')):
        if sc not in scen:
            problems.append('known-differences.txt:%d: no scenario %s' % (n, sc))
        elif not os.path.exists(os.path.join(here, 'expected', sc + '.diff')):
            problems.append('known-differences.txt:%d: no expected/%s.diff' % (n, sc))
        if not re.fullmatch(r'[0-9a-f]{12}', h):
            problems.append('known-differences.txt:%d: %r is no hunk hash' % (n, h))
    for p in problems:
        print('compat: lint: ' + p)
    if not problems:
        print('compat: lint: %d scenarios, documentation consistent' % len(scen))
    return 1 if problems else 0


def main(argv):
    if argv[:1] == ['lint']:
        return lint(os.path.dirname(os.path.abspath(__file__)))
    if len(argv) >= 4 and argv[0] == 'normalize':
        normalize(argv[1], argv[2], argv[3])
        return 0
    if len(argv) >= 5 and argv[0] == 'check':
        return check(argv[1], argv[2], argv[3], argv[4], '--update' in argv[5:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
