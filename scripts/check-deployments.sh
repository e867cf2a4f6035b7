#!/usr/bin/env bash
# check-deployments.sh checks everything that is not Go code but ships with
# it, with the tools that understand each kind of file. It installs what it
# needs (idempotent: present tools are reused) and fails on the first kind
# of file with a problem, after checking all files of that kind.
#
#   Compose files         docker-compose config -q (Debian's docker-compose)
#   shell scripts         shellcheck
#   GitHub workflows      actionlint (go install, pinned: ACTIONLINT_VERSION)
#   Kubernetes manifests  parsed, apiVersion/kind known, references resolved
#                         (volumes, ConfigMaps, service accounts, selectors,
#                         kustomization files); no kubeconform or kubectl
#                         here, so no API-schema validation
#   sidecar configs       secrets-sidecar validate, for every config under
#                         deployments/ (examples/ are validated by go test)
#   JSON and YAML         renovate.json, dependabot.yml, the config schema
#   monitoring            promtool check rules and test rules (Debian's
#                         prometheus package) on deployments/monitoring;
#                         prometheusrule.yaml holds alerts.yaml's groups;
#                         podmonitor.yaml selects the sidecar pods and port;
#                         dashboard.json is JSON (its queries' metric names
#                         are checked by go test, against /metrics)
#
#   ACTIONLINT_VERSION  default v1.7.12
#   TOOLS               where go-installed tools go (default bin/tools)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
tools=${TOOLS:-$repo/bin/tools}
actionlint_version=${ACTIONLINT_VERSION:-v1.7.12}

note() { echo "check-deployments: $*"; }
fail() {
	echo "check-deployments: FAIL: $*" >&2
	exit 1
}

# --- tools ----------------------------------------------------------------

sudo_cmd=()
if [[ $(id -u) != 0 ]]; then
	command -v sudo >/dev/null || fail "not root and no sudo: cannot install packages"
	sudo_cmd=(sudo)
fi
apt_missing=()
command -v docker-compose >/dev/null || apt_missing+=(docker-compose)
command -v shellcheck >/dev/null || apt_missing+=(shellcheck)
python3=/usr/bin/python3 # Debian's, where python3-yaml installs
[[ -x $python3 ]] && "$python3" -c 'import yaml' 2>/dev/null || apt_missing+=(python3 python3-yaml)
command -v promtool >/dev/null || apt_missing+=(prometheus)
if [[ ${#apt_missing[@]} -gt 0 ]]; then
	note "installing ${apt_missing[*]} (apt)"
	"${sudo_cmd[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
actionlint=$tools/actionlint
if [[ ! -x $actionlint ]] || [[ $("$actionlint" -version | head -1) != "$actionlint_version" ]]; then
	note "installing actionlint $actionlint_version (go install)"
	GOBIN=$tools go install "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version"
fi

# Every file of a kind: tracked and new (not ignored), from git when it can.
files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard -- "$@" | sort -u | while read -r f; do
			[[ -f $f ]] && echo "$f"
		done
	else
		for p in "$@"; do find . -path "./$p" -type f | sed 's|^\./||'; done | sort -u
	fi
}

# --- Compose files --------------------------------------------------------

mapfile -t composes < <(files '*docker-compose*.yml' '*docker-compose*.yaml' '*compose.yml' '*compose.yaml')
[[ ${#composes[@]} -gt 0 ]] || fail "no compose files found"
bad=0
for f in "${composes[@]}"; do
	if out=$(cd "$(dirname "$f")" && docker-compose -f "$(basename "$f")" config -q 2>&1); then
		note "compose ok: $f"
	else
		echo "$out" >&2
		note "compose INVALID: $f"
		bad=1
	fi
done
((bad == 0)) || fail "invalid compose files"

# --- shell scripts --------------------------------------------------------

mapfile -t shells < <(files '*.sh' '.ci/run')
[[ ${#shells[@]} -gt 0 ]] || fail "no shell scripts found"
shellcheck --external-sources "${shells[@]}" || fail "shellcheck"
note "shellcheck ok: ${#shells[@]} scripts"

# --- GitHub workflows -----------------------------------------------------

mapfile -t workflows < <(files '.github/workflows/*.yml' '.github/workflows/*.yaml')
[[ ${#workflows[@]} -gt 0 ]] || fail "no workflows found"
"$actionlint" -shellcheck="$(command -v shellcheck)" "${workflows[@]}" || fail "actionlint"
note "actionlint ok: ${workflows[*]}"

# --- Kubernetes manifests, JSON and YAML ----------------------------------

"$python3" - <<'PY' || fail "Kubernetes manifests or JSON/YAML files"
import json, os, sys, yaml

problems = []
def problem(f, msg):
    problems.append(f"{f}: {msg}")

# JSON and YAML that tools elsewhere read.
for f in ["renovate.json", "docs/config.schema.json", "deployments/monitoring/dashboard.json"]:
    if os.path.exists(f):
        try:
            json.load(open(f))
        except Exception as e:
            problem(f, f"not JSON: {e}")
dep = yaml.safe_load(open(".github/dependabot.yml"))
if dep.get("version") != 2 or not dep.get("updates"):
    problem(".github/dependabot.yml", "want version: 2 and updates")
for u in dep.get("updates", []):
    if "package-ecosystem" not in u or "schedule" not in u or not ("directory" in u or "directories" in u):
        problem(".github/dependabot.yml", f"update entry lacks package-ecosystem, directory or schedule: {u}")

KNOWN = {
    ("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "ConfigMap"), ("v1", "Secret"),
    ("v1", "Service"), ("v1", "Pod"), ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("rbac.authorization.k8s.io/v1", "Role"),
}
NAMESPACED = {"ServiceAccount", "ConfigMap", "Secret", "Service", "Pod", "Deployment", "StatefulSet",
              "DaemonSet", "Job", "CronJob", "RoleBinding", "Role"}

def pod_spec(doc):
    k = doc["kind"]
    if k == "Pod":
        return doc.get("spec", {})
    if k == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]

def check_pod(f, name, spec, objects, generated):
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    containers = spec.get("initContainers", []) + spec.get("containers", [])
    if not spec.get("containers"):
        problem(f, f"{name}: no containers")
    for c in containers:
        cn = f"{name}/{c.get('name')}"
        if not c.get("image"):
            problem(f, f"{cn}: no image")
        elif c["image"].endswith(":latest"):
            problem(f, f"{cn}: image tag latest")
        for m in c.get("volumeMounts", []):
            if m["name"] not in vols:
                problem(f, f"{cn}: volumeMount {m['name']} has no volume")
        if "restartPolicy" in c and c["restartPolicy"] != "Always":
            problem(f, f"{cn}: restartPolicy {c['restartPolicy']} (only Always, for native sidecars)")
        if "restartPolicy" in c and c not in spec.get("initContainers", []):
            problem(f, f"{cn}: restartPolicy on a regular container")
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(f, f"{cn}: allowPrivilegeEscalation is not false")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = c.get(probe)
            if p and "httpGet" in p:
                port = p["httpGet"]["port"]
                if isinstance(port, str) and port not in {pp.get("name") for pp in c.get("ports", [])}:
                    problem(f, f"{cn}: {probe} uses port {port}, which the container does not name")
    used = {m["name"] for c in containers for m in c.get("volumeMounts", [])}
    for v in vols:
        if v not in used:
            problem(f, f"{name}: volume {v} is not mounted")
    for v in vols.values():
        cm = v.get("configMap", {}).get("name")
        if cm and ("ConfigMap", cm) not in objects and cm not in generated:
            problem(f, f"{name}: ConfigMap {cm} is neither defined nor generated")
    sa = spec.get("serviceAccountName")
    if sa and ("ServiceAccount", sa) not in objects:
        problem(f, f"{name}: ServiceAccount {sa} is not defined")

def kustomization(d):
    f = os.path.join(d, "kustomization.yaml")
    k = yaml.safe_load(open(f))
    if k.get("kind") != "Kustomization":
        problem(f, "kind is not Kustomization")
    docs, generated = [], set()
    for r in k.get("resources", []):
        p = os.path.join(d, r)
        if os.path.isdir(p):
            sub, gen = kustomization(p)
            docs += sub
            generated |= gen
            continue
        if not os.path.exists(p):
            problem(f, f"resource {r} does not exist")
            continue
        for doc in yaml.safe_load_all(open(p)):
            if doc is not None:
                docs.append((p, doc))
    for g in k.get("configMapGenerator", []):
        generated.add(g["name"])
        for spec in g.get("files", []):
            path = spec.split("=", 1)[-1]
            if not os.path.exists(os.path.join(d, path)):
                problem(f, f"configMapGenerator {g['name']}: file {path} does not exist")
    listed = {os.path.normpath(p) for p, _ in docs}
    for name in os.listdir(d):
        p = os.path.normpath(os.path.join(d, name))
        if name.endswith((".yaml", ".yml")) and name != "kustomization.yaml" and p not in listed \
                and not any(p == os.path.normpath(os.path.join(d, x.split("=", 1)[-1]))
                            for g in k.get("configMapGenerator", []) for x in g.get("files", [])):
            problem(f, f"{name} is in the directory but not in resources")
    return docs, generated

root = "deployments/kubernetes"
all_docs, generated = [], set()
for d, _, fs in os.walk(root):
    if "kustomization.yaml" in fs:
        docs, gen = kustomization(d)
        all_docs += docs
        generated |= gen
objects = set()
for f, doc in all_docs:
    av, kind, name = doc.get("apiVersion"), doc.get("kind"), doc.get("metadata", {}).get("name")
    if not (av and kind and name):
        problem(f, "a document lacks apiVersion, kind or metadata.name")
        continue
    if (av, kind) not in KNOWN:
        problem(f, f"unknown apiVersion/kind {av} {kind}")
    objects.add((kind, name))
for f, doc in all_docs:
    kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
    if kind in {"Deployment", "StatefulSet", "DaemonSet"}:
        sel = doc["spec"]["selector"].get("matchLabels", {})
        labels = doc["spec"]["template"]["metadata"].get("labels", {})
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            problem(f, f"{kind} {name}: selector {sel} does not match the template labels {labels}")
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}:
        check_pod(f, f"{kind} {name}", pod_spec(doc), objects, generated)

sidecars = [c for f, d in all_docs if d.get("kind") == "Deployment"
            for c in pod_spec(d).get("initContainers", []) if c.get("restartPolicy") == "Always"]
if not sidecars:
    problem(root, "no Deployment with a native sidecar (an init container with restartPolicy: Always)")
onces = [c for f, d in all_docs if d.get("kind") == "Deployment"
         for c in pod_spec(d).get("initContainers", []) if "once" in c.get("args", [])]
if not onces:
    problem(root, "no Deployment with a `once` init container")

# Monitoring: the PrometheusRule carries exactly alerts.yaml's groups, and
# the PodMonitor selects the pods of the sidecar Deployments by the name of
# their secrets-sidecar container's port.
mon = "deployments/monitoring"
alerts = yaml.safe_load(open(f"{mon}/alerts.yaml"))
rule = yaml.safe_load(open(f"{mon}/prometheusrule.yaml"))
if (rule.get("apiVersion"), rule.get("kind")) != ("monitoring.coreos.com/v1", "PrometheusRule"):
    problem(f"{mon}/prometheusrule.yaml", "not a monitoring.coreos.com/v1 PrometheusRule")
elif rule.get("spec", {}).get("groups") != alerts.get("groups"):
    problem(f"{mon}/prometheusrule.yaml", "its groups differ from alerts.yaml's: run scripts/prometheusrule.sh")
pm = yaml.safe_load(open(f"{mon}/podmonitor.yaml"))
f = f"{mon}/podmonitor.yaml"
if (pm.get("apiVersion"), pm.get("kind")) != ("monitoring.coreos.com/v1", "PodMonitor"):
    problem(f, "not a monitoring.coreos.com/v1 PodMonitor")
else:
    sel = pm["spec"]["selector"]
    def selects(labels):
        if any(labels.get(k) != v for k, v in sel.get("matchLabels", {}).items()):
            return False
        for e in sel.get("matchExpressions", []):
            if e["operator"] != "In":
                problem(f, f"operator {e['operator']} is not checked here")
            elif labels.get(e["key"]) not in e["values"]:
                return False
        return True
    ns = yaml.safe_load(open(os.path.join(root, "kustomization.yaml"))).get("namespace")
    if pm["metadata"].get("namespace") != ns:
        problem(f, f"namespace {pm['metadata'].get('namespace')} is not the deployments' {ns}")
    ports = {e.get("port") for e in pm["spec"].get("podMetricsEndpoints", [])}
    for df, d in all_docs:
        if d.get("kind") != "Deployment":
            continue
        spec = pod_spec(d)
        runs = [c for c in spec.get("initContainers", []) + spec.get("containers", [])
                if "run" in c.get("args", []) or "exec" in c.get("args", [])]
        named = {p.get("name") for c in runs for p in c.get("ports", [])}
        picked = selects(d["spec"]["template"]["metadata"].get("labels", {}))
        if runs and named and not picked:
            problem(f, f"does not select Deployment {d['metadata']['name']}, whose sidecar serves /metrics")
        if picked and not ports <= named:
            problem(f, f"Deployment {d['metadata']['name']}: its sidecar names no port {sorted(ports - named)}")
        if picked and len([1 for c in spec.get("initContainers", []) + spec.get("containers", [])
                           for p in c.get("ports", []) if p.get("name") in ports]) > 1:
            problem(f, f"Deployment {d['metadata']['name']}: more than one container names port {sorted(ports)}")
    if not any(selects(d["spec"]["template"]["metadata"].get("labels", {})) for _, d in all_docs if d.get("kind") == "Deployment"):
        problem(f, "selects no Deployment")

for p in problems:
    print("  " + p, file=sys.stderr)
print(f"check-deployments: Kubernetes: {len(all_docs)} objects parsed and cross-checked", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
note "Kubernetes manifests ok (parsed and cross-checked; no API-schema validation here)"

# --- monitoring -----------------------------------------------------------

promtool check rules deployments/monitoring/alerts.yaml || fail "promtool check rules"
(cd deployments/monitoring && promtool test rules alerts_test.yaml) || fail "promtool test rules"
note "alert rules ok: checked, unit-tested, PrometheusRule in step"
# The dashboard's queries, with Grafana's variables filled in, parsed by
# promtool as recording rules.
queries=$(mktemp)
"$python3" - deployments/monitoring/dashboard.json >"$queries" <<'PY'
import json, sys, yaml
rules, seen = [], set()
def walk(node):
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str) and node["expr"] not in seen:
            seen.add(node["expr"])
            expr = node["expr"].replace("$__rate_interval", "5m").replace("$__interval", "1m")
            rules.append({"record": f"dashboard:query{len(rules)}", "expr": expr})
        for v in node.values():
            walk(v)
    elif isinstance(node, list):
        for v in node:
            walk(v)
walk(json.load(open(sys.argv[1])))
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sys.stdout)
PY
promtool check rules "$queries" >/dev/null || { promtool check rules "$queries"; rm -f "$queries"; fail "dashboard.json: a query does not parse"; }
note "dashboard ok: $(grep -c 'record:' "$queries") queries parse"
rm -f "$queries"

# --- sidecar configs under deployments/ -----------------------------------

mapfile -t configs < <(files 'deployments/*.yaml' 'deployments/*.yml' | while read -r f; do
	grep -q '^secrets:' "$f" && echo "$f"
done)
[[ ${#configs[@]} -gt 0 ]] || fail "no sidecar configs under deployments/"
bin=$(mktemp -d)/secrets-sidecar
trap 'rm -rf "$(dirname "$bin")"' EXIT
CGO_ENABLED=0 go build -o "$bin" ./cmd/secrets-sidecar
"$bin" validate "${configs[@]}" || fail "secrets-sidecar validate"

note "all checks passed"
