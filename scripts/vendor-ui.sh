#!/usr/bin/env bash
# Re-fetches the dashboard's vendored JavaScript from the npm registry (run by hand when
# upgrading; the build never fetches anything). Writes the files, their licences and
# crates/ui/assets/vendor/MANIFEST, which a unit test re-hashes.
set -euo pipefail
HTMX=${HTMX:-2.0.11}
UPLOT=${UPLOT:-1.6.32}
dest=$(cd "$(dirname "$0")/.." && pwd)/crates/ui/assets/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack "htmx.org@$HTMX" "uplot@$UPLOT" >/dev/null
mkdir htmx uplot
tar xzf "htmx.org-$HTMX.tgz" -C htmx
tar xzf "uplot-$UPLOT.tgz" -C uplot
cp htmx/package/dist/htmx.min.js "$dest/htmx.min.js"
cp htmx/package/LICENSE "$dest/LICENSE-htmx"
cp uplot/package/dist/uPlot.iife.min.js uplot/package/dist/uPlot.min.css "$dest/"
cp uplot/package/LICENSE "$dest/LICENSE-uplot"
cd "$dest"
{
  echo "# package@version  file  sha384  licence — fetched with 'npm pack htmx.org@$HTMX uplot@$UPLOT' by scripts/vendor-ui.sh"
  for e in "htmx.org@$HTMX htmx.min.js LICENSE-htmx(0BSD)" "uplot@$UPLOT uPlot.iife.min.js LICENSE-uplot(MIT)" "uplot@$UPLOT uPlot.min.css LICENSE-uplot(MIT)"; do
    set -- $e
    echo "$1 $2 sha384-$(openssl dgst -sha384 -binary "$2" | base64 -w0) $3"
  done
} > MANIFEST
echo "vendored htmx $HTMX and uPlot $UPLOT into $dest"
