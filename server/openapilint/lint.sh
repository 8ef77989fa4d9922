#!/bin/sh
# Lints server/openapi.json with Redocly CLI at its recommended rules
# (redocly.yaml), the version pinned by package-lock.json, and fails on any
# error or warning. The few findings that do not apply are listed, each with
# why, in .redocly.lint-ignore.yaml. CI runs this. Redocly CLI 2 needs
# Node.js 20.19 or later.
set -eu
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund --silent
out=$(REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	npx --no-install redocly lint --format=stylish ../openapi.json 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -v '[║╔╚]' # without Redocly's banner about Node.js versions
if echo "$out" | grep -q ' warning '; then
	echo "openapi.json: the linter warns; fix it, or list it in .redocly.lint-ignore.yaml with why" >&2
	exit 1
fi
