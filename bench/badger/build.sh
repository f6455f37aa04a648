#!/bin/sh
# Builds bench/badger/badger-bench offline against Debian's Go packages
# (golang-go, golang-github-dgraph-io-badger-dev): see README.md.
set -e
here=$(cd "$(dirname "$0")" && pwd)
GOCODE=${GOCODE:-/usr/share/gocode}
B=$(mktemp -d)
trap 'rm -rf "$B"' EXIT
mkdir -p "$B/src/badgerbench"
cp "$here/main.go" "$B/src/badgerbench/"
printf 'module badgerbench\n\ngo 1.19\n' > "$B/src/badgerbench/go.mod"
GO111MODULE=off GOPATH="$B:$GOCODE" GOCACHE="${GOCACHE:-$B/cache}" \
	go build -o "${1:-$here/badger-bench}" badgerbench
