# shellcheck shell=sh
# Sourced by mvnw, bin/tandem and .ci/run: exports JAVA_HOME pointing at a JDK whose major
# version is at least 25. Keeps a JAVA_HOME that already qualifies; otherwise looks in the
# usual JVM folders (Debian /usr/lib/jvm, RPM /usr/lib/jvm, macOS, SDKMAN) and picks the
# newest. Fails with a clear message when none is found.
tandem_java_major() {
  "$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java\.specification\.version = \([0-9][0-9]*\).*/\1/p' | head -n 1
}
tandem_find_java25() {
  if [ -n "${JAVA_HOME-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    v=$(tandem_java_major "$JAVA_HOME")
    if [ -n "$v" ] && [ "$v" -ge 25 ]; then return 0; fi
  fi
  best=""; bestv=0
  # mvnw runs with `set -f`; the folder search needs globbing.
  case $- in *f*) tandem_noglob=1; set +f ;; *) tandem_noglob=0 ;; esac
  for d in /usr/lib/jvm/* /usr/java/* /Library/Java/JavaVirtualMachines/*/Contents/Home \
           "$HOME"/.sdkman/candidates/java/* "$HOME"/.jdks/*; do
    [ -x "$d/bin/java" ] && [ -x "$d/bin/javac" ] || continue
    v=$(tandem_java_major "$d")
    if [ -n "$v" ] && [ "$v" -ge 25 ] && [ "$v" -gt "$bestv" ]; then best=$d; bestv=$v; fi
  done
  [ "$tandem_noglob" = 1 ] && set -f
  if [ -z "$best" ]; then
    echo "tandem: no JDK 25 or newer found (JAVA_HOME='${JAVA_HOME-}', searched /usr/lib/jvm and friends). Install Temurin 25 or set JAVA_HOME." >&2
    return 1
  fi
  JAVA_HOME=$best
  export JAVA_HOME
}
tandem_find_java25 || exit 1
