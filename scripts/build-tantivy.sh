#!/usr/bin/env bash
# Install into .venv the tantivy wheel pip chose, rebuilt from its PyPI source with Tantivy's
# `zstd-compression` feature: the embedded store then compresses documents with zstd (0.35 of raw NDJSON on
# disk in all instead of 0.44 with the LZ4 of PyPI's wheels; docs/operations.md "Disk").
#
# Nothing else changes: same version, same Python API, one line of its Cargo.toml (the feature), and the
# local version label `+zstd`, which `tantivy>=...` requirements still accept. Partitions created with LZ4
# stay readable.
#
# - Needs cargo (Rust >= 1.85: rustup's, or $CARGO) and the registries (PyPI for the source and maturin,
#   crates.io for the crates). Takes about 3 minutes on 2 cores, once: the wheel is cached in
#   ${MINTLOG_WHEEL_CACHE:-~/.cache/mintlog/wheels} and reinstalled from there.
# - Without cargo, or when the build fails, it keeps PyPI's wheel, says so, and exits 0: Mintlog works
#   with LZ4. With MINTLOG_REQUIRE_ZSTD=1 (set by .ci/run) it exits 1 instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
HOME_DIR=${HOME:-/root}
CACHE=${MINTLOG_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME_DIR/.cache}/mintlog/wheels}

give_up() {
  echo "build-tantivy: $1" >&2
  if [ "${MINTLOG_REQUIRE_ZSTD:-0}" = 1 ]; then
    echo "build-tantivy: MINTLOG_REQUIRE_ZSTD=1: failing" >&2
    exit 1
  fi
  echo "build-tantivy: keeping PyPI's tantivy (LZ4 document store: about 20 % more disk)" >&2
  exit 0
}

installed=$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("tantivy"))')
case "$installed" in
  *+zstd) echo "build-tantivy: tantivy $installed (zstd) already installed"; exit 0 ;;
esac
version=${installed%%+*}

wheel=$(ls "$CACHE"/tantivy-"$version"+zstd-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  cargo=${CARGO:-$(command -v cargo || true)}
  if [ -z "$cargo" ] && [ -x "$HOME_DIR/.cargo/bin/cargo" ]; then cargo=$HOME_DIR/.cargo/bin/cargo; fi
  [ -n "$cargo" ] || give_up "no cargo on PATH or in ~/.cargo/bin: cannot build tantivy $version with zstd"
  export PATH="$(dirname "$cargo"):$PATH"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "build-tantivy: building tantivy $version with zstd ($("$cargo" --version)); about 3 minutes"
  "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "tantivy==$version" -d "$work" \
    || give_up "cannot download the source of tantivy $version from PyPI"
  tar -xzf "$work"/tantivy-"$version".tar.gz -C "$work"
  source_dir="$work/tantivy-$version"
  # The one change: Tantivy's zstd feature. Also a local version label, and the default toolchain.
  "$PYTHON" - "$source_dir" "$version" <<'EOF' || give_up "tantivy $version's Cargo.toml has an unexpected shape"
import pathlib, re, sys
source, version = pathlib.Path(sys.argv[1]), sys.argv[2]
cargo = source / "Cargo.toml"
text, found = re.subn(r'(?m)^tantivy = "([^"]+)"$', r'tantivy = { version = "\1", features = ["zstd-compression"] }', cargo.read_text())
if found != 1:
    sys.exit("no `tantivy = \"...\"` dependency line")
cargo.write_text(text)
project = source / "pyproject.toml"
text, found = re.subn(rf'(?m)^version = "{re.escape(version)}"$', f'version = "{version}+zstd"', project.read_text())
if found != 1:
    sys.exit("no static version in pyproject.toml")
project.write_text(text)
(source / "rust-toolchain.toml").unlink(missing_ok=True)
EOF
  mkdir -p "$CACHE"
  "$PYTHON" -m pip wheel --quiet --no-deps "$source_dir" -w "$work/wheel" \
    || give_up "building tantivy $version with zstd failed (see above)"
  cp "$work"/wheel/tantivy-*.whl "$CACHE"/
  wheel=$(ls "$CACHE"/tantivy-"$version"+zstd-*.whl | head -n 1)
fi
"$PYTHON" -m pip install --quiet --no-deps --force-reinstall "$wheel"
"$PYTHON" -c 'from mintlog.adapters.logstore.tantivy_schema import docstore_compression as c; v = c(); print("build-tantivy: new partitions use", v); assert v.startswith("zstd")' \
  || give_up "the installed tantivy does not read zstd"
