#!/bin/sh
# SPDX-License-Identifier: MIT
# Regenerate the build system: ./autogen.sh && ./configure && make check
set -e
cd "$(dirname "$0")"
mkdir -p build-aux m4
autoreconf --force --install --warnings=all
