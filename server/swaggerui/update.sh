#!/bin/sh
# Copies the files of the pinned swagger-ui-dist (package-lock.json) that
# the /docs page uses into dist/, which is committed and embedded in gaasd.
# With --check, only compares dist/ with the pinned package (CI runs this).
# To move to a new release: change the version in package.json, run
# `npm install --ignore-scripts`, then this script, and commit all three.
set -eu
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund --silent
files="swagger-ui-bundle.js swagger-ui.css favicon-32x32.png favicon-16x16.png oauth2-redirect.html oauth2-redirect.js LICENSE NOTICE"
if [ "${1:-}" = --check ]; then
	for f in $files; do
		cmp "node_modules/swagger-ui-dist/$f" "dist/$f" || { echo "dist/$f differs from the pinned swagger-ui-dist: run server/swaggerui/update.sh" >&2; exit 1; }
	done
	echo "dist/ matches swagger-ui-dist $(node -p 'require("./node_modules/swagger-ui-dist/package.json").version')"
	exit 0
fi
rm -rf dist && mkdir dist
for f in $files; do cp "node_modules/swagger-ui-dist/$f" dist/; done
