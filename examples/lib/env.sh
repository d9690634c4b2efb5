# Sourced by every examples/<name>/run.sh and by examples/run-all.sh: finds or builds the
# binaries (BATON_BIN, else `cargo build -p baton-cli`; SQS_RUST_EXAMPLE_BIN, else
# `cargo build -p baton-cli --example sqs-order-processor`, the aws-sdk-rust program of
# sqs-migration, whose dependencies `cargo test` builds anyway) and the Python virtual
# environment of the examples (examples/.venv from examples/requirements.txt, reinstalled only
# when that file changed), and psql. Exports BATON_BIN, SQS_RUST_EXAMPLE_BIN and PYTHON.
examples_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The archive steps run SQL through psql (Debian's postgresql-client, installed when missing
# and running as root, like the dashboard tests' chromium).
if ! command -v psql >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "== installing psql (apt-get install postgresql-client)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
    else
        echo "psql is missing: install Debian's postgresql-client (sudo apt-get install postgresql-client)" >&2
        exit 1
    fi
fi
repo_dir="$(cd "$examples_dir/.." && pwd)"

targets=()
[ -n "${BATON_BIN:-}" ] || targets+=(--bin baton)
[ -n "${SQS_RUST_EXAMPLE_BIN:-}" ] || targets+=(--example sqs-order-processor)
if [ "${#targets[@]}" -gt 0 ]; then
    echo "== cargo build -p baton-cli ${targets[*]}" >&2
    (cd "$repo_dir" && cargo build --quiet -p baton-cli "${targets[@]}")
fi
export BATON_BIN="${BATON_BIN:-$repo_dir/target/debug/baton}"
export SQS_RUST_EXAMPLE_BIN="${SQS_RUST_EXAMPLE_BIN:-$repo_dir/target/debug/examples/sqs-order-processor}"

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
