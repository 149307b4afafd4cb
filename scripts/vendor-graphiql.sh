#!/bin/sh
# Refreshes the GraphiQL page's assets under src/idgraph/api/static/graphiql from the npm
# registry: the published packages' prebuilt, minified browser builds (UMD) and their
# licences, at the versions below. `npm pack` downloads a package's tarball and checks it
# against the registry's integrity hash; nothing is installed and no package script runs.
#
#   sh scripts/vendor-graphiql.sh        (from the repository root; needs npm)
#
# GraphiQL 4 is the last major version with a UMD build (GraphiQL 5 ships ES modules
# only, for a bundler); React 18 is the last with UMD builds, and GraphiQL 4 supports it.
set -eu

GRAPHIQL=4.1.2
REACT=18.3.1

dest="$(pwd)/src/idgraph/api/static/graphiql"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null
for tarball in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
    mkdir "${tarball%-*}"
    tar -xzf "$tarball.tgz" -C "${tarball%-*}"
done

cp graphiql/package/graphiql.min.js graphiql/package/graphiql.min.css "$dest/"
cp react/package/umd/react.production.min.js "$dest/"
cp react-dom/package/umd/react-dom.production.min.js "$dest/"
cp graphiql/package/LICENSE "$dest/LICENSE.graphiql"
cp react/package/LICENSE "$dest/LICENSE.react"
cp react-dom/package/LICENSE "$dest/LICENSE.react-dom"

cd "$dest"
sha256sum graphiql.min.js graphiql.min.css react.production.min.js \
    react-dom.production.min.js >SHA256SUMS
echo "graphiql $GRAPHIQL, react $REACT, react-dom $REACT -> $dest"
