# Sourced by every examples/<name>/run.sh and by examples/run-all.sh: finds or builds the
# baton binary (BATON_BIN, else `cargo build -p baton-cli`) and the Python virtual
# environment of the examples (examples/.venv from examples/requirements.txt, reinstalled only
# when that file changed). Exports BATON_BIN and PYTHON.
examples_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_dir="$(cd "$examples_dir/.." && pwd)"

if [ -z "${BATON_BIN:-}" ]; then
    echo "== cargo build -p baton-cli" >&2
    (cd "$repo_dir" && cargo build --quiet -p baton-cli)
    BATON_BIN="$repo_dir/target/debug/baton"
fi
export BATON_BIN

venv="$examples_dir/.venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv" >&2
    python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$examples_dir/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "== installing examples/requirements.txt" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$examples_dir/requirements.txt"
    echo "$want" >"$stamp"
fi
export PYTHON="$venv/bin/python"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$examples_dir/lib${PYTHONPATH:+:$PYTHONPATH}"
