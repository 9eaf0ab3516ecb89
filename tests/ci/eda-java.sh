#!/usr/bin/env bash
# ansible-rulebook's rule engine (Drools, through jpy) needs a Java 17 (or later) runtime. Install Debian's
# openjdk-17-jre-headless with apt-get when `java` is missing or older, then print the JAVA_HOME to use.
#
# Usage: JAVA_HOME=$(tests/ci/eda-java.sh)      (root, or sudo without a password, for the install)
set -euo pipefail

major() {  # "17.0.15" -> 17, "1.8.0_392" -> 1
  "$1" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1
}

java_bin=$(command -v java 2>/dev/null || true)
if [ -z "$java_bin" ] || [ "$(major "$java_bin")" -lt 17 ]; then
  echo "eda-java: no Java 17 runtime${java_bin:+ ($java_bin is older)}: installing openjdk-17-jre-headless" >&2
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >&2
  java_bin=
  for candidate in /usr/lib/jvm/java-17-openjdk-*/bin/java; do
    [ -x "$candidate" ] && java_bin=$candidate && break
  done
  [ -n "$java_bin" ] || { echo "eda-java: openjdk-17-jre-headless installed no java under /usr/lib/jvm" >&2; exit 1; }
fi
real=$(readlink -f "$java_bin")
echo "eda-java: $("$real" -version 2>&1 | head -n 1) at $real" >&2
dirname "$(dirname "$real")"
