#!/usr/bin/env bash
# The baseline for bench/dashboard.bench.ts: what the brief's dashboard.sh does, one kubectl
# call per section and per service (talos-homelab scripts/dashboard.sh, research anchors
# Part 2 §2), against the same cluster. Not part of nsops; only measured against it.
set -uo pipefail
NS=${NAMESPACE:?}
K="kubectl --kubeconfig ${KUBECONFIG:?}"
$K get namespace "$NS" >/dev/null || exit 1
$K get nodes >/dev/null
for app in prowlarr sonarr radarr lidarr bazarr qbittorrent jellyfin jellyseerr; do
  ip=$($K -n "$NS" get svc "$app" -o jsonpath='{.spec.clusterIP}:{.spec.ports[0].port}' 2>/dev/null)
  host=$($K -n "$NS" get ingress "$app" -o jsonpath='{.spec.rules[0].host}' 2>/dev/null)
  phase=$($K -n "$NS" get pods -l "app.kubernetes.io/name=$app" -o jsonpath='{.items[0].status.phase} {.items[0].status.containerStatuses[0].ready}' 2>/dev/null)
  echo "$app $ip http://$host $phase"
done
$K -n "$NS" get pvc --no-headers
$K -n "$NS" get pods -o wide
$K -n "$NS" get events --field-selector type=Warning --no-headers | tail -10
