#!/usr/bin/env bash
# Checks the Helm chart with the real tools, offline (no cluster, no schema downloads):
#   1. helm lint --strict, with the default values and with an override;
#   2. helm template with both value sets;
#   3. kubeconform -strict on the rendered manifests, against JSON schemas generated here from
#      the Kubernetes OpenAPI v2 spec that the k8s.io/kube-openapi Go module ships
#      (pkg/schemaconv/testdata/swagger.json, info.version v1.27.0), fetched through the Go module
#      proxy like any other module (helm itself builds against that same module version).
# helm and kubeconform are built with `go install` into .cache/bin if missing or of another
# version. Exits non-zero on any failure. Not part of `make test`; run it as `make helm-check`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
CHART=helm/streamproc
BIN=$ROOT/.cache/bin
WORK=$ROOT/.cache/helm-check

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
SPEC_MODULE=k8s.io/kube-openapi
SPEC_VERSION=v0.0.0-20260721132016-d427ff9ee9ad
SPEC_FILE=pkg/schemaconv/testdata/swagger.json
SCHEMAS=$ROOT/.cache/k8s-schemas/kube-openapi-$SPEC_VERSION-strict

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[[ -x $GO ]] || { echo "helm-check: go not found (set GO=/path/to/go)" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }

# The module version a Go-built binary was installed from ("" if none or not built by go install).
installed_version() {
  [[ -x $1 ]] || return 0
  "$GO" version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "mod" && $2 == m { print $3 }'
}

install_tool() { # binary module package version
  local have
  have=$(installed_version "$BIN/$1" "$2")
  if [[ $have != "$4" ]]; then
    step "installing $1 $4 into .cache/bin (go install; helm takes a few minutes on 2 cores)"
    mkdir -p "$BIN"
    GOBIN=$BIN GOFLAGS= nice "$GO" install "$3@$4"
  fi
}

install_tool helm helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
install_tool kubeconform github.com/yannh/kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
HELM=$BIN/helm
KUBECONFORM=$BIN/kubeconform

if [[ ! -f $SCHEMAS/.complete ]]; then
  step "generating strict JSON schemas from $SPEC_MODULE@$SPEC_VERSION/$SPEC_FILE"
  spec_dir=$("$GO" mod download -json "$SPEC_MODULE@$SPEC_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$SCHEMAS"
  # Same conversion as kubeconform's and openapi2jsonschema's strict standalone schemas:
  # one file per kind named <kind>-<first label of group>-<version>.json (kubeconform's
  # {{ .ResourceKind }}{{ .KindSuffix }}), int-or-string as string|integer, Quantity as
  # string|number, and additionalProperties: false on every object schema with properties.
  # The definitions a kind uses are bundled into its file under "definitions", so the $refs
  # (#/definitions/...) resolve locally. Null values are not allowed for optional fields.
  python3 - "$spec_dir/$SPEC_FILE" "$SCHEMAS" <<'PY'
import json, os, sys

spec_path, out_dir = sys.argv[1], sys.argv[2]
defs = json.load(open(spec_path))["definitions"]

def fix(node):
    if not isinstance(node, dict):
        return node
    if node.get("format") == "int-or-string":
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    node = dict(node)
    node.pop("description", None)
    if "properties" in node:
        node["properties"] = {k: fix(v) for k, v in node["properties"].items()}
        node.setdefault("additionalProperties", False)
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = fix(node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        node["items"] = fix(node["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            node[key] = [fix(s) for s in node[key]]
    return node

fixed = {name: fix(schema) for name, schema in defs.items()}
fixed["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {"oneOf": [{"type": "string"}, {"type": "number"}]}

def refs(node, acc):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            name = ref[len("#/definitions/"):]
            if name not in acc:
                acc.add(name)
                refs(fixed[name], acc)
        for value in node.values():
            refs(value, acc)
    elif isinstance(node, list):
        for value in node:
            refs(value, acc)
    return acc

os.makedirs(out_dir)
count = 0
for name, schema in fixed.items():
    for gvk in schema.get("x-kubernetes-group-version-kind", []):
        group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
        suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
        doc = dict(schema, **{"$schema": "http://json-schema.org/draft-04/schema#"})
        doc["definitions"] = {n: fixed[n] for n in sorted(refs(schema, set()))}
        with open(os.path.join(out_dir, f"{kind}{suffix}.json".lower()), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
        count += 1
for required in ("configmap-v1", "service-v1", "deployment-apps-v1", "statefulset-apps-v1"):
    assert os.path.exists(os.path.join(out_dir, required + ".json")), required
print(f"{count} schemas in {out_dir}")
PY
  touch "$SCHEMAS/.complete"
fi

rm -rf "$WORK"
mkdir -p "$WORK"
cat >"$WORK/override-values.yaml" <<'EOF'
existingSecret: streamproc-vendor-secrets
kafka:
  securityProtocol: SASL_SSL
  sasl: {username: streamproc, passwordSecret: kafka-sasl}
  tls: {caSecret: kafka-ca, clientSecret: kafka-client}
worker:
  replicas: 3
  storageClassName: fast-ssd
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
  dashboard: {enabled: true}
EOF

step "helm: $("$HELM" version --short) (module $(installed_version "$HELM" helm.sh/helm/v3))," \
  "kubeconform: module $(installed_version "$KUBECONFORM" github.com/yannh/kubeconform)"

step "helm lint --strict $CHART"
"$HELM" lint --strict "$CHART"
step "helm lint --strict $CHART -f override-values.yaml"
"$HELM" lint --strict "$CHART" -f "$WORK/override-values.yaml"

step "helm template test $CHART  (> .cache/helm-check/default.yaml)"
"$HELM" template test "$CHART" >"$WORK/default.yaml"
step "helm template test $CHART -f override-values.yaml  (> .cache/helm-check/override.yaml)"
"$HELM" template test "$CHART" -f "$WORK/override-values.yaml" >"$WORK/override.yaml"

# The override must have reached the manifests (kubeconform cannot tell).
grep -qx '  replicas: 3' "$WORK/override.yaml" || { echo "helm-check: worker.replicas=3 not rendered" >&2; exit 1; }
grep -q 'name: "streamproc-vendor-secrets"' "$WORK/override.yaml" ||
  { echo "helm-check: existingSecret not rendered" >&2; exit 1; }
! grep -q 'secretRef' "$WORK/default.yaml" || { echo "helm-check: secretRef without existingSecret" >&2; exit 1; }
# Kafka TLS / SASL: in worker, sender and API pods when set (the password as a mounted file), else nothing.
[[ $(grep -c 'name: STREAMPROC_KAFKA_SASL_PASSWORD_FILE' "$WORK/override.yaml") == 3 &&
   $(grep -c 'secretName: "kafka-sasl"' "$WORK/override.yaml") == 3 &&
   $(grep -c 'value: /var/run/streamproc/kafka-ca/ca.crt' "$WORK/override.yaml") == 3 ]] ||
  { echo "helm-check: kafka TLS / SASL settings not rendered in all three pods" >&2; exit 1; }
! grep -q 'STREAMPROC_KAFKA_S' "$WORK/default.yaml" || { echo "helm-check: kafka security set by default" >&2; exit 1; }
# Metrics: scrape annotations and the worker PDB by default; ServiceMonitors (worker, sender, api)
# and the dashboard only when asked for, the dashboard being valid JSON.
[[ $(grep -c 'prometheus.io/scrape: "true"' "$WORK/default.yaml") == 3 ]] ||
  { echo "helm-check: scrape annotations missing" >&2; exit 1; }
grep -q '^kind: PodDisruptionBudget' "$WORK/default.yaml" || { echo "helm-check: no worker PDB" >&2; exit 1; }
! grep -Eq '^kind: ServiceMonitor|grafana_dashboard' "$WORK/default.yaml" ||
  { echo "helm-check: ServiceMonitor or dashboard rendered by default" >&2; exit 1; }
[[ $(grep -c '^kind: ServiceMonitor' "$WORK/override.yaml") == 3 ]] ||
  { echo "helm-check: ServiceMonitors not rendered" >&2; exit 1; }
python3 - "$WORK/override.yaml" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
marker = "  streamproc.json: |-\n"
lines = []
for line in text[text.index(marker) + len(marker):].splitlines():
    if line and not line.startswith("    "):
        break
    lines.append(line[4:])
assert json.loads("\n".join(lines))["panels"], "dashboard without panels"
PY

step "kubeconform -strict (offline schemas: ${SCHEMAS#"$ROOT"/})"
# No -ignore-missing-schemas: a kind without a schema here is an error, not a skip. The one
# exception is the Prometheus Operator's ServiceMonitor (a CRD, not in the Kubernetes spec),
# skipped by name; the checks above make sure it is rendered.
"$KUBECONFORM" -strict -summary -verbose -skip ServiceMonitor \
  -schema-location "$SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  "$WORK/default.yaml" "$WORK/override.yaml"

step "helm-check: OK"
