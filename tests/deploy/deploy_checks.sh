#!/usr/bin/env bash
# Offline checks of the deployment files (ctest -L deploy; DESIGN.md "Deployment"). No Docker
# engine or cluster is needed: docker-compose 1.29 `config -q`, `kubectl kustomize`, yamllint,
# kubernetes-models (npm, check_k8s.js), promtool. Each check also runs on a deliberately broken
# copy and must reject it, for the right reason.
#
#   tests/deploy/deploy_checks.sh compose|kustomize|schema|yamllint|prometheus|dockerfile [NDX_BINARY]
#
# A missing checker fails the test and says what to install (./dev deps installs them all), except
# kubectl, which Debian does not package: without it the kustomize check exits 77 (ctest: Skipped)
# with a loud message, and the schema check still validates every manifest file directly.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/deploy"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ndx-deploy.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FAILED=0
PASSED=0

need() {  # need TOOL HINT
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "FAIL: '$1' is not installed: $2" >&2
  exit 1
}

need_node_modules() {
  need node "apt-get install nodejs npm"
  [ -d "$HERE/node_modules/kubernetes-models" ] && return 0
  echo "FAIL: tests/deploy/node_modules is missing: run 'npm ci --prefix tests/deploy' (./dev deps does)" >&2
  exit 1
}

ok() { echo "ok:   $*"; PASSED=$((PASSED + 1)); }
bad() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }

# expect_pass DESCRIPTION CMD...: the command must succeed.
expect_pass() {
  local what=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; echo "$out" | sed 's/^/      /'; fi
}

# expect_reject DESCRIPTION REGEX CMD...: the command must fail with output matching REGEX (so a
# broken file is rejected for the reason we broke it, not because the checker itself broke).
expect_reject() {
  local what=$1 pattern=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then
    bad "$what: the broken copy was ACCEPTED"
  elif ! grep -Eq -- "$pattern" <<<"$out"; then
    bad "$what: rejected, but not with /$pattern/:"; echo "$out" | sed 's/^/      /'
  else
    ok "$what (rejected: $(grep -Em1 -- "$pattern" <<<"$out" | cut -c1-110))"
  fi
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ $FAILED -eq 0 ]
  exit $?
}

# A copy of the repository's deployment files to break.
copy_tree() {
  mkdir -p "$TMP/tree"
  cp -r "$ROOT/deploy" "$ROOT/docker-compose.yml" "$ROOT/docker-compose.workers.yml" "$TMP/tree/"
  echo "$TMP/tree"
}

check_compose() {
  need docker-compose "apt-get install docker-compose (Debian's 1.29; 'docker compose' v2 is not used)"
  cd "$ROOT" || exit 1
  expect_pass "docker-compose.yml" docker-compose -f docker-compose.yml config -q
  expect_pass "docker-compose.yml + docker-compose.workers.yml" \
    docker-compose -f docker-compose.yml -f docker-compose.workers.yml config -q
  expect_pass "--scale ndx-worker=3 is possible (no container_name, no host port on ndx-worker)" \
    bash -c "docker-compose -f docker-compose.yml -f docker-compose.workers.yml config |
             awk '/^  ndx-worker:/{w=1;next} /^  [a-z]/{w=0} w && /container_name:|published:|ports:/{exit 1}'"
  local t; t=$(copy_tree)
  sed 's/^    ports:$/    portz:/' "$t/docker-compose.yml" >"$t/unknown-key.yml"
  expect_reject "compose with an unknown key (portz)" "portz" \
    docker-compose -f "$t/unknown-key.yml" config -q
  sed 's/^      postgres:$/      postgress:/' "$t/docker-compose.yml" >"$t/bad-depends.yml"
  expect_reject "compose depending on an undefined service" "postgress" \
    docker-compose -f "$t/bad-depends.yml" config -q
  sed 's/^      retries: 12$/      retries: twelve/' "$t/docker-compose.yml" >"$t/bad-type.yml"
  expect_reject "compose with a string where a number belongs" "retries" \
    docker-compose -f "$t/bad-type.yml" config -q
  finish
}

kustomize_skip_if_missing() {
  command -v kubectl >/dev/null 2>&1 && return 0
  cat >&2 <<'MSG'
******************************************************************************************
SKIPPED: kustomize rendering of deploy/k8s was NOT checked: kubectl is not installed.
Debian does not package a recent kubectl; install it from the Kubernetes or Google Cloud apt
repository (package `kubectl`). The schema check (deploy_k8s_schema) still validates every
manifest file on its own.
******************************************************************************************
MSG
  exit 77
}

check_kustomize() {
  kustomize_skip_if_missing
  need_node_modules
  local adapter="$ROOT/deploy/prometheus/prometheus-adapter.yaml"
  expect_pass "kubectl kustomize deploy/k8s | schema + policy" \
    bash -c "set -o pipefail; kubectl kustomize '$ROOT/deploy/k8s' |
             node '$HERE/check_k8s.js' --policy --adapter '$adapter' -"
  expect_pass "kubectl kustomize deploy/k8s/overlays/keda | schema + policy" \
    bash -c "set -o pipefail; kubectl kustomize '$ROOT/deploy/k8s/overlays/keda' |
             node '$HERE/check_k8s.js' --policy -"
  expect_pass "overlays/keda has a ScaledObject and no HPA" \
    bash -c "out=\$(kubectl kustomize '$ROOT/deploy/k8s/overlays/keda') &&
             grep -q '^kind: ScaledObject' <<<\"\$out\" && ! grep -q '^kind: HorizontalPodAutoscaler' <<<\"\$out\""
  local t; t=$(copy_tree)
  sed -i 's/^  replicas: 2$/  replicas: "two"/' "$t/deploy/k8s/base/queue.yaml"
  expect_reject "kustomize output with replicas: \"two\"" "replicas must be integer" \
    bash -c "set -o pipefail; kubectl kustomize '$t/deploy/k8s' | node '$HERE/check_k8s.js' -"
  t=$(mktemp -d "$TMP/k.XXXX"); cp -r "$ROOT/deploy" "$t/"
  sed -i 's/^  - pdb.yaml$/  - pdbs.yaml/' "$t/deploy/k8s/base/kustomization.yaml"
  expect_reject "kustomization naming a missing resource" "pdbs.yaml" \
    kubectl kustomize "$t/deploy/k8s"
  t=$(mktemp -d "$TMP/k.XXXX"); cp -r "$ROOT/deploy" "$t/"
  sed -i 's/^      terminationGracePeriodSeconds: 45$/      terminationGracePeriodSeconds: 20/' \
    "$t/deploy/k8s/base/worker.yaml"
  expect_reject "termination grace below NDX_SHUTDOWN_GRACE" "terminationGracePeriodSeconds 20" \
    bash -c "set -o pipefail; kubectl kustomize '$t/deploy/k8s' | node '$HERE/check_k8s.js' --policy -"
  finish
}

check_schema() {
  need_node_modules
  local adapter="$ROOT/deploy/prometheus/prometheus-adapter.yaml"
  expect_pass "deploy/k8s/base/*.yaml schema + policy" \
    node "$HERE/check_k8s.js" --policy --adapter "$adapter" "$ROOT"/deploy/k8s/base/*.yaml
  expect_pass "deploy/k8s/components/keda/scaledobject.yaml schema" \
    node "$HERE/check_k8s.js" "$ROOT/deploy/k8s/components/keda/scaledobject.yaml"
  local t; t=$(copy_tree)
  sed -i 's/^  replicas: 2$/  replicas: "two"/' "$t/deploy/k8s/base/worker.yaml"
  expect_reject "Deployment with replicas: \"two\"" "replicas must be integer" \
    node "$HERE/check_k8s.js" "$t/deploy/k8s/base/worker.yaml"
  sed -i 's/^  maxReplicaCount: 20$/  maxReplicaCount: twenty/' "$t/deploy/k8s/components/keda/scaledobject.yaml"
  expect_reject "ScaledObject with maxReplicaCount: twenty" "maxReplicaCount must be integer" \
    node "$HERE/check_k8s.js" "$t/deploy/k8s/components/keda/scaledobject.yaml"
  sed -i 's/name: ndx_queue_waiting$/name: ndx_queue_waitingg/' "$t/deploy/k8s/base/worker-hpa.yaml"
  expect_reject "HPA on a metric prometheus-adapter does not serve" "ndx_queue_waitingg is not produced" \
    node "$HERE/check_k8s.js" --policy --adapter "$adapter" "$t"/deploy/k8s/base/*.yaml
  sed '/readinessProbe:/,/failureThreshold: 2/d' "$ROOT/deploy/k8s/base/gateway.yaml" >"$t/deploy/k8s/base/gateway.yaml"
  expect_reject "Deployment without a readinessProbe" "ndx-gateway/ndx-gateway: no readinessProbe" \
    node "$HERE/check_k8s.js" --policy "$t"/deploy/k8s/base/*.yaml
  finish
}

check_yamllint() {
  need yamllint "apt-get install yamllint"
  cd "$ROOT" || exit 1
  expect_pass "yamllint compose files, deploy/, tests/deploy/yamllint.yaml" \
    yamllint -s -c tests/deploy/yamllint.yaml docker-compose.yml docker-compose.workers.yml deploy/ \
      tests/deploy/yamllint.yaml
  local t; t=$(copy_tree)
  sed -i 's/^  NDX_LOG_LEVEL: info$/  NDX_LOG_LEVEL: info\n  NDX_QUEUE: other/' "$t/deploy/k8s/base/config.yaml"
  expect_reject "a YAML file with a duplicate key" "duplication of key \"NDX_QUEUE\"" \
    yamllint -s -c tests/deploy/yamllint.yaml "$t/deploy/k8s/base/config.yaml"
  finish
}

check_prometheus() {
  need promtool "apt-get install prometheus (promtool 2.42)"
  need_node_modules
  local p="$ROOT/deploy/prometheus"
  expect_pass "promtool check rules ndx-alerts.yaml" promtool check rules "$p/ndx-alerts.yaml"
  expect_pass "promtool test rules ndx-alerts.test.yaml" bash -c "cd '$p' && promtool test rules ndx-alerts.test.yaml"
  expect_pass "promtool check config prometheus.yml" bash -c "cd '$p' && promtool check config prometheus.yml"
  node "$HERE/autoscaler_queries.js" "$p/prometheus-adapter.yaml" \
    "$ROOT/deploy/k8s/components/keda/scaledobject.yaml" >"$TMP/queries.yaml"
  expect_pass "autoscaler PromQL (prometheus-adapter rules, KEDA triggers) parses" \
    promtool check rules "$TMP/queries.yaml"
  local t; t=$(copy_tree)
  sed -i 's/> 300$/> > 300/' "$t/deploy/prometheus/ndx-alerts.yaml"
  expect_reject "a rule with bad PromQL" "parse error" promtool check rules "$t/deploy/prometheus/ndx-alerts.yaml"
  t=$(mktemp -d "$TMP/p.XXXX"); cp -r "$ROOT/deploy" "$t/"
  sed -i 's/^        for: 5m$/        for: 50m/' "$t/deploy/prometheus/ndx-alerts.yaml"
  expect_reject "rules that no longer meet their unit tests" "FAILED" \
    bash -c "cd '$t/deploy/prometheus' && promtool test rules ndx-alerts.test.yaml"
  sed -i "s/max by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})/max by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>}/" \
    "$t/deploy/prometheus/prometheus-adapter.yaml"
  node "$HERE/autoscaler_queries.js" "$t/deploy/prometheus/prometheus-adapter.yaml" >"$TMP/bad-queries.yaml"
  expect_reject "a prometheus-adapter rule with bad PromQL" "parse error|unclosed" \
    promtool check rules "$TMP/bad-queries.yaml"
  finish
}

# Problems of a Dockerfile's build-stage package list against `dev`'s (empty output = none).
dockerfile_package_problems() {
  local df=$1 dev_pkgs docker_pkgs
  dev_pkgs=$(sed -n '/^PACKAGES=(/,/^)/p' "$ROOT/dev" | sed '1d;$d' | tr -s ' \n' '\n' | grep -v '^$' | sort -u)
  docker_pkgs=$(sed -n '/^FROM debian:12 AS build/,/^FROM /p' "$df" |
    sed -n '/apt-get install/,/rm -rf/p' | tr -s ' \\\n' '\n' |
    grep -Ev '^(apt-get|install|-y|--no-install-recommends|&&|rm|-rf|/var/lib/apt/lists/\*|RUN)$' |
    grep -v '^$' | sort -u)
  [ -n "$dev_pkgs" ] || { echo "no PACKAGES=( ... ) list found in ./dev"; return 1; }
  [ -n "$docker_pkgs" ] || { echo "no apt-get install in the build stage of $df"; return 1; }
  # What the build needs from `dev`'s list: compilers, build tools and -dev packages (not the
  # servers, clients and test tools that `dev` also installs; libclang-rt is the libFuzzer and
  # sanitizer runtime of the tests' clang build).
  local p rc=0
  for p in $(grep -E -- '-dev$|^protobuf-compiler|^(build-essential|cmake|ninja-build|pkg-config)$' <<<"$dev_pkgs" |
             grep -v '^libclang-rt-'); do
    grep -qx "$p" <<<"$docker_pkgs" || { echo "the build stage lacks $p, which ./dev installs"; rc=1; }
  done
  for p in $docker_pkgs; do
    [ "$p" = ca-certificates ] && continue
    grep -qx "$p" <<<"$dev_pkgs" || { echo "the build stage installs $p, which ./dev does not"; rc=1; }
  done
  return $rc
}

# The image's build stage installs what `dev` installs for building (no drift), its stages and user
# are as documented, and runtime-packages.sh finds the runtime packages of a real binary.
check_dockerfile() {
  local binary=${1:-}
  local df="$ROOT/deploy/docker/Dockerfile"
  expect_pass "Dockerfile build stage installs the build packages of ./dev, and only those" \
    dockerfile_package_problems "$df"
  sed '/libpqxx-dev/s/libpqxx-dev //' "$df" >"$TMP/Dockerfile.broken"
  expect_reject "a Dockerfile whose build stage lacks libpqxx-dev" "lacks libpqxx-dev" \
    dockerfile_package_problems "$TMP/Dockerfile.broken"
  local stage
  for stage in 'FROM debian:12 AS build' 'FROM debian:12-slim AS runtime' 'USER 10001:10001'; do
    if grep -qx "$stage" "$df"; then ok "Dockerfile: $stage"; else bad "Dockerfile lacks '$stage'"; fi
  done
  if [ -n "$binary" ]; then
    local pkgs
    if pkgs=$("$ROOT/deploy/docker/runtime-packages.sh" "$binary" 2>&1) && grep -q '^libgrpc++1' <<<"$pkgs"; then
      ok "runtime-packages.sh $(basename "$binary"): $(tr '\n' ' ' <<<"$pkgs" | cut -c1-100)..."
    else
      bad "runtime-packages.sh $binary did not find libgrpc++: $pkgs"
    fi
  fi
  finish
}

case "${1:-}" in
  compose) check_compose ;;
  kustomize) check_kustomize ;;
  schema) check_schema ;;
  yamllint) check_yamllint ;;
  prometheus) check_prometheus ;;
  dockerfile) shift; check_dockerfile "$@" ;;
  *) echo "usage: $0 compose|kustomize|schema|yamllint|prometheus|dockerfile [BINARY]" >&2; exit 2 ;;
esac
