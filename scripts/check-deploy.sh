#!/usr/bin/env bash
# Static checks of the deployment files in deploy/ (CI runs this; so can anyone before a
# release). Docker cannot run on the project's CI machines, so the container files are checked
# without it; the systemd units are checked with systemd's own verifier.
#
#   1. systemd units: `systemd-analyze verify` in a scratch root (a stub /usr/local/bin/tonghop
#      and a copy of the system's units), any warning about our units is a failure; offline
#      `systemd-analyze security` must stay at exposure 2.0 or below; the hardening the README
#      promises is present; the settings files the units name exist and are valid TOML.
#      The checker checks itself: deliberately broken copies of a unit must fail.
#   2. Dockerfile: every COPY/ADD source exists in the build context (the repository root) and is
#      not excluded by its .dockerignore; stages named by --from exist; the runtime stage runs as
#      a non-root user; the build is `cargo build --release --locked`. Then the files the build
#      stage copies, and nothing else, are assembled and compiled with `cargo check --locked`
#      (skip with TONGHOP_CHECK_DEPLOY_BUILD=0).
#   3. compose.yaml parses (PyYAML) and names postgres, certs, aggregator, agent-1, agent-2; its
#      references (depends_on, volumes, build context, certificate paths, host names) resolve.
#
# Whether the settings files are accepted by tonghop itself is tested by
# `cargo test --test multi_process` (deploy_settings_files_are_accepted).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
ok() { echo "ok: $*"; }
section() { echo "== $*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root for: $*" >&2
    return 1
  fi
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# ---------------------------------------------------------------------------------------------
section "tools"
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze missing: installing Debian's systemd package"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd
fi
systemd-analyze --version | head -n 1
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "PyYAML missing: installing it"
  python3 -m pip install --quiet --user pyyaml 2>/dev/null ||
    python3 -m pip install --quiet --user --break-system-packages pyyaml 2>/dev/null ||
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-yaml
fi
python3 -c 'import sys, yaml, tomllib; print("python", sys.version.split()[0], "PyYAML", yaml.__version__)'

# ---------------------------------------------------------------------------------------------
section "systemd units (deploy/systemd)"
units=(deploy/systemd/*.service)
[ -e "${units[0]}" ] || fail "no unit files in deploy/systemd"

# A scratch root: the system's own units (targets the units depend on) and a stub for every
# absolute executable the units start, so `verify` checks our files and not this machine.
root=$scratch/root
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd"
system_units=/usr/lib/systemd/system
[ -d "$system_units" ] || system_units=/lib/systemd/system
cp -a "$system_units" "$root/usr/lib/systemd/"
stub_executables() { # unit file...
  grep -h '^Exec[A-Za-z]*=' "$@" | sed -E 's/^[^=]*=[-@:+!]*//; s/[[:space:]].*//' | sort -u |
    while read -r exe; do
      case $exe in /*) ;; *) continue ;; esac
      mkdir -p "$root$(dirname "$exe")"
      printf '#!/bin/sh\nexit 0\n' >"$root$exe"
      chmod 0755 "$root$exe"
    done
}

# verify NAME FILE: FILE installed as NAME in the scratch root; prints systemd's complaints and
# fails on a non-zero exit or on any line about this unit (systemd only warns, exit 0, about
# unknown keys and bad values it ignores).
verify() {
  local name=$1 file=$2 out rc=0 complaints
  cp "$file" "$root/etc/systemd/system/$name"
  out=$(systemd-analyze verify --root="$root" --man=no "$name" 2>&1) || rc=$?
  rm -f "$root/etc/systemd/system/$name"
  complaints=$(printf '%s\n' "$out" | grep -F -e "$name" || true)
  if [ "$rc" -ne 0 ] || [ -n "$complaints" ]; then
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    return 1
  fi
  if [ -n "$out" ]; then
    printf '%s\n' "$out" | sed 's/^/    note (not about this unit): /'
  fi
}

stub_executables "${units[@]}"
for unit in "${units[@]}"; do
  name=$(basename "$unit")
  if verify "$name" "$unit"; then ok "systemd-analyze verify $name"; else fail "systemd-analyze verify $name"; fi
done

# The verifier must catch what it is here to catch: a misspelt directive, a bad value, a missing
# executable. Each broken copy of the first unit has to fail.
canary_src=${units[0]}
canary=$scratch/canary.service
declare -A breakages=(
  ["misspelt directive"]='/^\[Service\]/a ProtectSytem=strict'
  ["bad value"]='s/^ProtectSystem=.*/ProtectSystem=strictly/'
  ["missing executable"]='s|^ExecStart=/usr/local/bin/tonghop|ExecStart=/usr/local/bin/tonghop-missing|'
)
for what in "${!breakages[@]}"; do
  sed -e "${breakages[$what]}" "$canary_src" >"$canary"
  if cmp -s "$canary" "$canary_src"; then
    fail "self-test ($what): the edit did not apply to $canary_src"
  elif verify canary.service "$canary" 2>/dev/null; then
    fail "self-test: a unit with a $what passed verification; the check is blind"
  else
    ok "self-test: a unit with a $what fails verification"
  fi
done

# Offline security review needs systemd 250 or later (Debian 12 has 252).
offline_security=yes
systemd-analyze security --help 2>/dev/null | grep -q -- '--offline' || offline_security=no
for unit in "${units[@]}"; do
  name=$(basename "$unit")
  cp "$unit" "$root/etc/systemd/system/$name"
  if [ "$offline_security" = no ]; then
    echo "skipped: systemd-analyze security --offline (this systemd is older than 250)"
  elif out=$(systemd-analyze security --offline=yes --root="$root" --threshold=20 "$name" 2>&1); then
    ok "$(printf '%s\n' "$out" | grep -F 'Overall exposure' | sed 's/→ //') (threshold 2.0)"
  else
    printf '%s\n' "$out" | grep -E '✗|Overall' | sed 's/^/    /' >&2
    fail "systemd-analyze security $name: exposure above 2.0"
  fi
  rm -f "$root/etc/systemd/system/$name"

  # What deploy/README.md promises about every unit.
  for directive in '^User=[a-z]' '^StateDirectory=[a-z]' '^WorkingDirectory=/var/lib/' \
    '^ProtectSystem=strict$' '^NoNewPrivileges=yes$' '^ProtectHome=yes$' '^PrivateTmp=yes$' \
    '^ProtectKernelTunables=yes$' '^ProtectKernelModules=yes$' '^ProtectKernelLogs=yes$' \
    '^ProtectControlGroups=yes$' '^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$' \
    '^CapabilityBoundingSet=$' '^LockPersonality=yes$' '^MemoryDenyWriteExecute=yes$' \
    '^Restart=on-failure$' '^TimeoutStopSec=[0-9]+' '^WantedBy=multi-user.target$'; do
    grep -Eq "$directive" "$unit" || fail "$name lacks ${directive//[\^\$]/}"
  done
  stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
  if [ -n "$stop" ] && [ "$stop" -lt 60 ]; then
    fail "$name: TimeoutStopSec=$stop is shorter than a call may take to finish (60 s)"
  fi

  # The settings file the unit starts with ships next to it, as valid TOML.
  config=$(grep -E '^ExecStart=' "$unit" | sed -nE 's/.*--config[= ]([^ ]+).*/\1/p')
  if [ -z "$config" ]; then
    fail "$name: ExecStart names no --config file"
  elif [ ! -f "deploy/systemd/$(basename "$config")" ]; then
    fail "$name starts with $config but deploy/systemd/$(basename "$config") does not exist"
  elif python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' \
    "deploy/systemd/$(basename "$config")"; then
    ok "$name: $config is deploy/systemd/$(basename "$config"), valid TOML"
  else
    fail "deploy/systemd/$(basename "$config") is not valid TOML"
  fi
done

# ---------------------------------------------------------------------------------------------
section "Dockerfile (deploy/container/Dockerfile, build context: the repository root)"
context_dir=$scratch/context
if python3 - "$repo" deploy/container/Dockerfile "$context_dir" <<'PY'; then
import fnmatch, glob, json, os, re, shlex, shutil, sys

repo, dockerfile, assemble_to = sys.argv[1], sys.argv[2], sys.argv[3]
failures = 0

def fail(msg):
    global failures
    failures += 1
    print(f"FAIL: {msg}", file=sys.stderr)

def ok(msg):
    print(f"ok: {msg}")

# Instructions, with continuation lines joined and comments dropped.
instructions, current = [], ""
for raw in open(os.path.join(repo, dockerfile), encoding="utf-8"):
    line = raw.rstrip("\n")
    if not current and (not line.strip() or line.lstrip().startswith("#")):
        continue
    if current and line.lstrip().startswith("#"):
        continue
    if line.endswith("\\"):
        current += line[:-1] + " "
        continue
    current += line
    instructions.append(current.strip())
    current = ""
if current:
    fail("the Dockerfile ends inside a continued line")

ignore_file = os.path.join(repo, dockerfile + ".dockerignore")
if not os.path.exists(ignore_file):
    ignore_file = os.path.join(repo, ".dockerignore")
ignored = []
if os.path.exists(ignore_file):
    ignored = [l.strip() for l in open(ignore_file, encoding="utf-8")
               if l.strip() and not l.lstrip().startswith("#")]

def excluded(path):
    parts = path.split("/")
    for pattern in ignored:
        p = pattern.lstrip("/").rstrip("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatch(prefix, p) or fnmatch.fnmatch(prefix, p.replace("**/", "")):
                return pattern
    return None

stages = []          # (name, base image with the ARG defaults filled in, [instructions])
global_args = {}
for ins in instructions:
    keyword = ins.split(None, 1)[0].upper()
    if keyword == "FROM":
        words = ins.split()
        name = words[3] if len(words) >= 4 and words[2].upper() == "AS" else None
        image = re.sub(r"\$\{(\w+)\}|\$(\w+)",
                       lambda m: global_args.get(m.group(1) or m.group(2), m.group(0)), words[1])
        stages.append((name, image, []))
    elif keyword == "ARG" and not stages:
        arg = ins.split(None, 1)[1]
        key, _, value = arg.partition("=")
        global_args[key.strip()] = value.strip().strip('"')
    elif not stages:
        fail(f"instruction before the first FROM: {ins}")
    else:
        stages[-1][2].append(ins)
names = [s[0] for s in stages if s[0]]
if len(stages) < 2:
    fail("expected a multi-stage build (a build stage and a runtime stage)")

build_copies = []    # (stage name, workdir, sources, dest)
for name, base, body in stages:
    workdir = "/"
    for ins in body:
        keyword, _, rest = ins.partition(" ")
        keyword = keyword.upper()
        if keyword == "WORKDIR":
            workdir = os.path.join(workdir, rest.strip())
        if keyword not in ("COPY", "ADD"):
            continue
        rest = rest.strip()
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [a for a in args if a.startswith("--")]
        paths = [a for a in args if not a.startswith("--")]
        from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        if len(paths) < 2:
            fail(f"{keyword} needs a source and a destination: {ins}")
            continue
        sources, dest = paths[:-1], paths[-1]
        if from_stage is not None:
            if from_stage in names:
                ok(f"{keyword} --from={from_stage}: stage exists")
            elif re.fullmatch(r"\d+", from_stage) or ":" in from_stage or "/" in from_stage:
                ok(f"{keyword} --from={from_stage}: an image or stage index")
            else:
                fail(f"{keyword} --from={from_stage}: no stage of that name ({names})")
            continue
        for src in sources:
            matches = glob.glob(os.path.join(repo, src))
            if not matches:
                fail(f"{keyword} source {src!r} does not exist in the build context")
            elif excluded(src):
                fail(f"{keyword} source {src!r} is excluded by {excluded(src)!r} in "
                     f"{os.path.relpath(ignore_file, repo)}")
            else:
                ok(f"{keyword} source {src} exists")
        build_copies.append((name, workdir, sources, dest))

final_name, final_base, final_body = stages[-1]
users = [ins.split(None, 1)[1].strip() for ins in final_body if ins.upper().startswith("USER ")]
if not users:
    fail("the runtime stage has no USER: it would run as root")
elif users[-1].split(":")[0] in ("root", "0"):
    fail(f"the runtime stage runs as {users[-1]}")
else:
    ok(f"the runtime stage runs as {users[-1]} (not root)")
if not re.search(r"(bookworm-slim|trixie-slim|distroless)", final_base):
    fail(f"runtime base image {final_base} is neither Debian slim nor distroless")
else:
    ok(f"runtime base image {final_base}")
runs = " ".join(ins for _, _, body in stages for ins in body if ins.upper().startswith("RUN "))
if "cargo build --release --locked" not in runs:
    fail("no `cargo build --release --locked` in the build stage")
else:
    ok("the build stage runs cargo build --release --locked")
if any(ins.upper().startswith("HEALTHCHECK") for ins in final_body):
    ok("HEALTHCHECK present")
entry = [ins for ins in final_body if ins.upper().startswith(("ENTRYPOINT", "CMD"))]
if not entry:
    fail("the runtime stage has no ENTRYPOINT or CMD")

# Assemble what the build stage (the one running cargo) copies, as Docker would lay it out
# under its WORKDIR, so that the caller can compile exactly that.
build_stage = next((s for s in stages if "cargo build" in " ".join(s[2])), None)
if build_stage is None:
    fail("no stage runs cargo build")
else:
    os.makedirs(assemble_to, exist_ok=True)
    for name, workdir, sources, dest in build_copies:
        if name != build_stage[0]:
            continue
        target = os.path.normpath(os.path.join(workdir, dest))
        rel = os.path.relpath(target, workdir)
        if rel.startswith(".."):
            fail(f"COPY destination {dest} is outside the build stage's WORKDIR {workdir}")
            continue
        out = os.path.join(assemble_to, rel)
        for src in sources:
            for match in glob.glob(os.path.join(repo, src)):
                if os.path.isdir(match):
                    # Docker copies a directory's contents, not the directory itself.
                    shutil.copytree(match, out, dirs_exist_ok=True)
                else:
                    into_dir = dest.endswith("/") or len(sources) > 1
                    path = os.path.join(out, os.path.basename(match)) if into_dir else out
                    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                    shutil.copy2(match, path)
sys.exit(1 if failures else 0)
PY
  ok "Dockerfile instructions"
else
  fail "Dockerfile (see above)"
fi

if [ "${TONGHOP_CHECK_DEPLOY_BUILD:-1}" = 0 ]; then
  echo "skipped: compiling the Docker build context (TONGHOP_CHECK_DEPLOY_BUILD=0)"
elif [ ! -f "$context_dir/Cargo.toml" ]; then
  fail "the Dockerfile's build stage copies no Cargo.toml"
else
  # A fixed place, so repeated runs reuse the compiled package instead of piling up copies;
  # the shared target directory keeps every dependency warm.
  target_dir=${CARGO_TARGET_DIR:-$repo/target}
  assembled=$target_dir/check-deploy/context
  rm -rf "$assembled"
  mkdir -p "$(dirname "$assembled")"
  cp -a "$context_dir" "$assembled"
  echo "compiling only what the Dockerfile copies ($(cd "$assembled" && ls | tr '\n' ' '))"
  if CARGO_TARGET_DIR=$target_dir cargo check --locked --quiet --bin tonghop \
    --manifest-path "$assembled/Cargo.toml"; then
    ok "the files the Dockerfile copies build tonghop (cargo check --locked)"
  else
    fail "the files the Dockerfile copies do not build: a COPY is missing"
  fi
fi

# ---------------------------------------------------------------------------------------------
section "compose file (deploy/container/compose.yaml)"
if python3 - "$repo" deploy/container/compose.yaml <<'PY'; then
import os, re, sys, tomllib, yaml

repo, compose_path = sys.argv[1], sys.argv[2]
failures = 0

def fail(msg):
    global failures
    failures += 1
    print(f"FAIL: {msg}", file=sys.stderr)

def ok(msg):
    print(f"ok: {msg}")

base = os.path.dirname(os.path.join(repo, compose_path))
try:
    doc = yaml.safe_load(open(os.path.join(repo, compose_path), encoding="utf-8"))
except yaml.YAMLError as e:
    print(f"FAIL: {compose_path} does not parse: {e}", file=sys.stderr)
    sys.exit(1)
ok(f"{compose_path} parses")
services = doc.get("services") or {}
declared_volumes = set((doc.get("volumes") or {}).keys())

for required in ("postgres", "certs", "aggregator", "agent-1", "agent-2"):
    if required in services:
        ok(f"service {required}")
    else:
        fail(f"no service named {required}")

def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return env

built_images = set()
for name, svc in services.items():
    if not isinstance(svc, dict):
        fail(f"service {name} is not a mapping")
        continue
    build = svc.get("build")
    if build is not None:
        context = build if isinstance(build, str) else build.get("context", ".")
        context_dir = os.path.normpath(os.path.join(base, context))
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        if not os.path.isdir(context_dir):
            fail(f"{name}: build context {context} does not exist")
        elif not os.path.isfile(os.path.join(context_dir, dockerfile)):
            fail(f"{name}: {dockerfile} not found in the build context {context}")
        else:
            ok(f"{name}: builds {dockerfile} in context {os.path.relpath(context_dir, repo) or '.'}")
        if svc.get("image"):
            built_images.add(svc["image"])
    deps = svc.get("depends_on") or {}
    for dep in (deps if isinstance(deps, (list, dict)) else []):
        if dep not in services:
            fail(f"{name} depends on {dep}, which is no service")
        elif isinstance(deps, dict) and deps[dep].get("condition") == "service_healthy" \
                and "healthcheck" not in services[dep]:
            fail(f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck")
    for volume in svc.get("volumes") or []:
        source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
        if source.startswith((".", "/", "~")):
            path = os.path.normpath(os.path.join(base, os.path.expanduser(source)))
            if not os.path.exists(path):
                fail(f"{name}: bind mount source {source} does not exist")
        elif source not in declared_volumes:
            fail(f"{name}: volume {source} is not declared under volumes:")
    for value in env_of(svc).values():
        for ref in re.findall(r"\$\{([^}]*)\}", str(value)):
            if not re.fullmatch(r"[A-Z_][A-Z0-9_]*((:?[-?+]).*)?", ref):
                fail(f"{name}: malformed variable reference ${{{ref}}}")

tonghop_services = [n for n, s in services.items()
                    if isinstance(s, dict) and s.get("image") in built_images]
for required in ("certs", "aggregator", "agent-1", "agent-2"):
    if required not in tonghop_services:
        fail(f"{required} does not run the image that the file builds ({sorted(built_images)})")

pg = services.get("postgres", {})
if "healthcheck" not in pg:
    fail("postgres has no healthcheck")
if not any(str(v).split(":", 1)[-1].startswith("/var/lib/postgresql/data")
           for v in pg.get("volumes") or []):
    fail("postgres keeps its data outside a volume")

aggregator = services.get("aggregator", {})
# Interpolations (the password) may hold any character: replace them before parsing the URL.
url = re.sub(r"\$\{[^}]*\}", "secret", env_of(aggregator).get("TONGHOP_DATABASE_URL", ""))
host = re.sub(r"^postgres(ql)?://([^@/]*@)?", "", url).split("/", 1)[0].split(":", 1)[0]
if not url.startswith(("postgres://", "postgresql://")):
    fail("aggregator: TONGHOP_DATABASE_URL is not a postgres:// URL")
elif host not in services:
    fail(f"aggregator: TONGHOP_DATABASE_URL names host {host!r}, which is no service")
else:
    ok(f"aggregator: TONGHOP_DATABASE_URL points at the {host} service")

# The agents' endpoint host must be in the server certificate that the certs service makes.
certs_command = " ".join(services.get("certs", {}).get("command") or [])
cert_hosts = set(re.findall(r"--host[= ](\S+)", certs_command))
if "certs init" not in certs_command:
    fail("certs: does not run `tonghop certs init`")
agent_settings = tomllib.load(open(os.path.join(base, "agent.toml"), "rb"))
endpoint = agent_settings.get("endpoint", "")
endpoint_host = re.sub(r"^https?://", "", endpoint).split("/", 1)[0].rsplit(":", 1)[0]
if endpoint_host not in cert_hosts:
    fail(f"agent.toml endpoint host {endpoint_host!r} is not among the server certificate's "
         f"hosts {sorted(cert_hosts)}")
elif endpoint_host not in services:
    fail(f"agent.toml endpoint host {endpoint_host!r} is no service")
else:
    ok(f"agents reach {endpoint}, named in the server certificate")

units = tomllib.load(open(os.path.join(repo, "examples/binh-son/units.toml"), "rb"))
unit_codes = {u.get("code") for u in units.get("units", units.get("unit", []))}
seen_units = set()
for name in ("agent-1", "agent-2"):
    env = env_of(services.get(name, {}))
    unit = env.get("TONGHOP_AGENT_UNIT")
    cert, key = env.get("TONGHOP_AGENT_TLS_CERT", ""), env.get("TONGHOP_AGENT_TLS_KEY", "")
    if not unit:
        fail(f"{name}: no TONGHOP_AGENT_UNIT")
        continue
    if unit_codes and unit not in unit_codes:
        fail(f"{name}: unit {unit} is not in the embedded example province")
    if unit in seen_units:
        fail(f"{name}: unit {unit} is used by another agent too")
    seen_units.add(unit)
    if cert != f"/etc/tonghop/pki/units/{unit}.pem" or key != f"/etc/tonghop/pki/units/{unit}-key.pem":
        fail(f"{name}: certificate {cert} / key {key} are not unit {unit}'s (certs init writes "
             f"units/{unit}.pem and units/{unit}-key.pem)")
    else:
        ok(f"{name}: unit {unit} with its own certificate")
sys.exit(1 if failures else 0)
PY
  ok "compose file"
else
  fail "compose file (see above)"
fi

# ---------------------------------------------------------------------------------------------
section "deploy/README.md covers every file"
for file in deploy/systemd/* deploy/container/*; do
  grep -qF "$(basename "$file")" deploy/README.md || fail "deploy/README.md does not mention $(basename "$file")"
done
grep -q "Docker cannot run on these CI machines" deploy/README.md ||
  fail "deploy/README.md does not say that Docker cannot run on the CI machines"

echo
if [ "$failures" -gt 0 ]; then
  echo "check-deploy: $failures failure(s)" >&2
  exit 1
fi
echo "check-deploy: all deployment checks passed"
