#!/usr/bin/env bash
# Usage: transparency/run.sh DJANGO_SPEC PYTHON_VERSION [run.py options] [-- runtests args]
#   e.g. transparency/run.sh "django>=6.1,<6.2" 3.13
# Runs Django's own dispatch and signals test suites without, then with,
# signaltrace installed and capturing. See transparency/README.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/run.py" "$@"
