"""Run one pickled multyvac job: ``python -m multyvacinit.pybootstrap``.

This is the command the multyvac 0.5.0 client submits for ``multyvac.submit``.

* stdin holds ``(f, args, kwargs)`` pickled (protocol 2) with
  ``multyvac.util.cloudpickle.CloudPickler``;
* ``f(*args, **kwargs)`` is called and its return value is written to
  ``/tmp/.result`` with the same pickler, protocol 2 (the client reads that
  file as a base64 "pickle" result);
* if anything raises, the traceback goes to stderr and the exit status is 1
  (the client turns that into ``multyvac.JobError(stderr)``).
"""
import cPickle as pickle
import os
import sys

from multyvac.util.cloudpickle import CloudPickler

RESULT_PATH = '/tmp/.result'


def write_result(value):
    # type: (object) -> None
    """Pickle ``value`` to RESULT_PATH atomically (temporary file + rename)."""
    tmp_path = '%s.tmp.%d' % (RESULT_PATH, os.getpid())
    with open(tmp_path, 'wb') as out:
        CloudPickler(out, 2).dump(value)
    os.rename(tmp_path, RESULT_PATH)


def main():
    # type: () -> None
    """Load the job from stdin, run it and store its result."""
    f, args, kwargs = pickle.load(sys.stdin)
    write_result(f(*args, **kwargs))
    sys.stdout.flush()


if __name__ == '__main__':
    main()
