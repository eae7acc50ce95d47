"""The job of multyvac's ``Volume.sync_up`` / ``sync_down``: one rsync server on stdio.

multyvac 0.5.0 submits ``python .../multyvacinit/sync.py`` with the volume, waits for
the job to show an SSH port, runs ``rsync -e ssh`` against it, then kills the job.
Cloudpipe's gateway serves that SSH port itself and carries the session over the
job's stdin and stdout; it sends, as the first line of stdin, the rsync server's
argument list (JSON), checked on its side (options, and paths inside the mount):
``["rsync", "--server", ...]``. This process checks the options and that the paths
are plain absolute ones again, then becomes that rsync server, whose protocol is the
rest of stdin and all of stdout. The volume is mounted where the client points rsync.
"""
import json
import os
import re
import sys

MAX_LINE = 64 * 1024
# never 's' (--protect-args: rsync would read a new argument list from stdin), nor a
# letter that takes a value; after 'e.', the client's capabilities
FLAGS = re.compile(r'^-(?=.)[vqblogDtprzLcunxHAXSWdOJKkmIyRCiEPh]*(?:e\.[A-Za-z]*)?$')
CHMOD = re.compile(r'^--chmod=[ugoaDF+=,rwxXst-]+$')
LONG = ('--sender', '--delete', '--numeric-ids', '--no-implied-dirs', '--partial', '--inplace')


def read_line():
    # type: () -> bytes
    """The first line of stdin, byte by byte: what follows it is rsync's."""
    line = b''
    while not line.endswith(b'\n'):
        byte = os.read(0, 1)
        if not byte:
            break
        line += byte
        if len(line) > MAX_LINE:
            raise ValueError('the argument line is over %d bytes' % MAX_LINE)
    return line


def checked(argv):
    # type: (object) -> list
    """``argv`` if it is an rsync server's command line, else ValueError."""
    if not isinstance(argv, list) or len(argv) < 4 or argv[:2] != ['rsync', '--server']:
        raise ValueError('not an rsync server command line')
    dot = argv.index('.') if '.' in argv else -1
    if dot < 2 or dot == len(argv) - 1:
        raise ValueError('no "." and path in the rsync server command line')
    for option in argv[2:dot]:
        if not isinstance(option, type(u'')) and not isinstance(option, str):
            raise ValueError('a non-string option')
        if not (FLAGS.match(option) or CHMOD.match(option) or option in LONG):
            raise ValueError('option %r is not allowed' % (option,))
    for path in argv[dot + 1:]:
        if not isinstance(path, (type(u''), str)) or not path.startswith('/') or '/../' in path + '/':
            raise ValueError('path %r is not a plain absolute path' % (path,))
    return [part.encode('utf-8') if isinstance(part, type(u'')) else part for part in argv]


def main():
    # type: () -> int
    try:
        argv = checked(json.loads(read_line().decode('utf-8')))
    except ValueError as exc:
        sys.stderr.write('cloudpipe sync: %s\n' % exc)
        return 2
    os.execvp('rsync', argv)
    return 127


if __name__ == '__main__':
    sys.exit(main())
