#!/bin/sh
# Which Python the Makefile makes a virtualenv with. POSIX sh: it runs before any venv exists.
#
#   scripts/python.sh pick test|demo [INTERPRETER]
#       Prints the path of an interpreter the whole toolchain of `make test` (or `make demo`)
#       supports, trying the supported versions in order of preference: CI's 3.11 first, and
#       never 3.13 for the demo (PyAirbyte needs < 3.13). With INTERPRETER (the Makefile's
#       PYTHON=...), checks that one instead. When none suits, prints ONE line saying which
#       Python to install, and exits 1.
#   scripts/python.sh find 3.12
#       Prints the path of a Python 3.12 on this machine (PATH, pyenv's and uv's versions), or
#       says there is none and exits 1 (`make test-pythons`).
#   scripts/python.sh venv demo .venv
#       Silent when the virtualenv's Python suits `make demo`; else the one line, and exit 1.
#
# An interpreter counts only if it runs (a pyenv shim for a version not selected does not) and
# can make a virtualenv (Debian's python3.X without python3.X-venv cannot).

set -u

# Supported versions, in order of preference. The package's own range, requires-python in
# pyproject.toml, is these three (unit_tests/test_lock.py checks that they agree).
TEST_VERSIONS="3.11 3.12 3.13"
DEMO_VERSIONS="3.11 3.12"

# One interpreter's "MAJOR.MINOR VENV PATH", VENV being yes when it can make a virtualenv.
describe() {
    "$1" -c '
import sys
try:
    import ensurepip, venv  # noqa: F401
    ok = "yes"
except ImportError:
    ok = "no"
print("%d.%d" % sys.version_info[:2], ok, sys.executable)' 2>/dev/null
}

# Interpreters that may be Python $1, most likely first, one a line.
candidates() {
    printf '%s\n' "python$1" python3 python
    for root in "${PYENV_ROOT:-$HOME/.pyenv}/versions" "${XDG_DATA_HOME:-$HOME/.local/share}/uv/python"; do
        for path in "$root/$1".*/bin/"python$1" "$root"/cpython-"$1".*/bin/"python$1"; do
            if [ -x "$path" ]; then printf '%s\n' "$path"; fi
        done
    done
}

# Prints the path of a Python $1 that can make a virtualenv. One that runs but cannot is
# remembered in NO_VENV ("VERSION PATH") for the message.
NO_VENV=""
NEWLINE='
'
find_version() {
    saved_ifs=$IFS
    IFS=$NEWLINE
    for candidate in $(candidates "$1"); do
        IFS=$saved_ifs
        info=$(describe "$candidate") || continue
        version=${info%% *}
        rest=${info#* }
        [ "$version" = "$1" ] || continue
        if [ "${rest%% *}" = yes ]; then
            printf '%s\n' "${rest#* }"
            return 0
        fi
        NO_VENV="$version ${rest#* }"
    done
    IFS=$saved_ifs
    return 1
}

# "python3 is 3.9", or "no python3 runs", for the message.
seen() {
    info=$(describe python3) && echo "python3 is ${info%% *}" || echo "no python3 runs"
}

# "3.11 3.12 3.13" as "3.11, 3.12 or 3.13".
listed() {
    set -- $1
    out=$1
    shift
    while [ "$#" -gt 1 ]; do out="$out, $1"; shift; done
    if [ "$#" -eq 1 ]; then out="$out or $1"; fi
    echo "$out"
}

# The one line when nothing suits. $1: purpose, $2: versions, $3: what was found instead.
advice() {
    preferred=${2%% *}
    if [ -n "$NO_VENV" ]; then
        echo "make $1: Python ${NO_VENV%% *} at ${NO_VENV#* } cannot make a virtualenv: install python${NO_VENV%% *}-venv (apt install python${NO_VENV%% *}-venv) and run make $1 again"
        return
    fi
    why=""
    if [ "$1" = demo ]; then why=" (PyAirbyte needs Python < 3.13)"; fi
    echo "make $1 needs Python $(listed "$2")$why but $3: install Python $preferred (for example: pyenv install $preferred, or uv python install $preferred) and run make $1 again"
}

case "${1:-}" in
    pick)
        purpose=${2:-test}
        case "$purpose" in
            demo) versions=$DEMO_VERSIONS ;;
            test) versions=$TEST_VERSIONS ;;
            *) echo "usage: $0 pick test|demo [INTERPRETER]" >&2; exit 2 ;;
        esac
        if [ -n "${3:-}" ]; then
            # PYTHON=... given to make: that one, or the line saying why not.
            info=$(describe "$3") || info=""
            version=${info%% *}
            rest=${info#* }
            case " $versions " in
                *" $version "*)
                    if [ "${rest%% *}" = yes ]; then echo "${rest#* }"; exit 0; fi
                    NO_VENV="$version ${rest#* }"
                    advice "$purpose" "$versions" ""
                    ;;
                *)
                    if [ -z "$info" ]; then found="does not run"; else found="is $version"; fi
                    why=""
                    if [ "$purpose" = demo ]; then why=" (PyAirbyte needs Python < 3.13)"; fi
                    echo "make $purpose needs Python $(listed "$versions")$why but PYTHON=$3 $found: name one of those in PYTHON, or leave PYTHON unset"
                    ;;
            esac
            exit 1
        fi
        for version in $versions; do
            find_version "$version" && exit 0
        done
        advice "$purpose" "$versions" "found none ($(seen))"
        exit 1
        ;;
    find)
        [ -n "${2:-}" ] || { echo "usage: $0 find 3.X" >&2; exit 2; }
        find_version "$2" || { echo "no Python $2 on this machine"; exit 1; }
        ;;
    venv)
        # Silent when the virtualenv $3 runs a Python that suits $2; else the one line.
        case "${2:-}" in
            demo) versions=$DEMO_VERSIONS ;;
            *) versions=$TEST_VERSIONS ;;
        esac
        info=$(describe "${3:-.venv}/bin/python") || info="none"
        case " $versions " in
            *" ${info%% *} "*) exit 0 ;;
        esac
        why=""
        if [ "$2" = demo ]; then why=" (PyAirbyte needs Python < 3.13)"; fi
        if [ "$info" = none ]; then runs="has no Python that runs"; else runs="runs Python ${info%% *}"; fi
        echo "make $2 needs Python $(listed "$versions")$why but the virtualenv ${3:-.venv} $runs: make clean $2 makes a new one (with python3.11 or another of those, which must be installed)"
        exit 1
        ;;
    versions)
        # The supported versions for a purpose, in order of preference (for the Makefile).
        case "${2:-test}" in
            demo) echo "$DEMO_VERSIONS" ;;
            *) echo "$TEST_VERSIONS" ;;
        esac
        ;;
    *)
        echo "usage: $0 pick test|demo [INTERPRETER] | find 3.X | venv test|demo VENV | versions [test|demo]" >&2
        exit 2
        ;;
esac
