#!/usr/bin/env node
// Checks quinistry's Kubernetes manifests, printing one `ok - ` / `not ok - `
// line per check (the project's test convention) and exiting 1 if any failed.
//
//   node validate.js --help-text FILE [--facts-out FILE] MANIFEST.yaml...
//
// --help-text: the output of `quinistry --help`; the default port, the user
//   and the health-check path are read from it rather than written down here.
// --facts-out: also write the values the node-level demo in tests/k8s.sh
//   needs (host ports, image names, probe timeout, user) as shell variables.
//
// Three layers, each of which the self-tests at the end prove can fail:
//  1. YAML: strict parsing (duplicate keys are errors), and every document
//     must mean the same under YAML 1.2 and 1.1 (kubectl's parser is 1.1-ish:
//     an unquoted `on` or `no` would silently become a boolean there).
//  2. Schema: the kubernetes-models classes, generated from the Kubernetes
//     OpenAPI document, validate types, enums, formats and required fields
//     with ajv. Their schemas do not forbid unknown properties, so a second
//     pass has TypeScript type-check each document as an object literal of
//     the matching kubernetes-models interface: the excess-property check
//     rejects any field the API does not define, at any depth.
//  3. Consistency: ports, probe path, user, images and labels agree with
//     each other and with what the binary says about itself.
'use strict';

const fs = require('fs');
const path = require('path');
const YAML = require('yaml');
const ts = require('typescript');

const MODELS_VERSION = require('kubernetes-models/package.json').version;
const NAME_LABEL = 'app.kubernetes.io/name';
const COMPONENT_LABEL = 'app.kubernetes.io/component';
const GENERATION_LABEL = 'quinistry/generation';
const MAX_PROBE_TIMEOUT = 2; // seconds; /v2/ is answered from memory
const MAX_GRACE = 10; // seconds; the server exits within 1 s of SIGTERM

// ---------------------------------------------------------------- output

let failures = 0;
function report(okay, description, problems) {
  if (okay) {
    console.log(`ok - ${description}`);
  } else {
    failures++;
    const why = problems && problems.length ? `: ${problems.join('; ')}` : '';
    console.log(`not ok - ${description}${why}`.replace(/\s*\n\s*/g, ' '));
  }
}

// ---------------------------------------------------------------- layer 1

// Returns {docs: [{index, value}], problems: [string]}.
function parseManifest(text) {
  const problems = [];
  const docs = [];
  const opts = { strict: true, uniqueKeys: true, prettyErrors: true };
  const as12 = YAML.parseAllDocuments(text, { ...opts, version: '1.2' });
  const as11 = YAML.parseAllDocuments(text, { ...opts, version: '1.1' });
  if (!Array.isArray(as12)) return { docs, problems: ['not a YAML stream'] };
  as12.forEach((doc, index) => {
    for (const e of [...doc.errors, ...doc.warnings]) problems.push(`document ${index + 1}: ${e.message}`);
    if (doc.errors.length) return;
    const value = doc.toJS();
    if (value === null || value === undefined) return; // empty document, e.g. after a trailing ---
    const other = as11[index] && !as11[index].errors.length ? as11[index].toJS() : undefined;
    const diff = firstDifference(value, other, '');
    if (diff !== null) problems.push(`document ${index + 1}: ${diff || '(root)'} reads differently under YAML 1.1; quote it`);
    docs.push({ index, value });
  });
  if (!docs.length && !problems.length) problems.push('no documents');
  return { docs, problems };
}

function firstDifference(a, b, where) {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null)) return where;
  if (a === null || typeof a !== 'object') return a === b ? null : where;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = firstDifference(a[k], b[k], Array.isArray(a) ? `${where}[${k}]` : `${where}.${k}`);
    if (d !== null) return d;
  }
  return null;
}

// ---------------------------------------------------------------- layer 2

// "apps/v1" + "DaemonSet" -> "kubernetes-models/apps/v1/DaemonSet"
function modelModule(doc) {
  if (!doc || typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string') return null;
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(doc.apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(doc.kind)) return null;
  return `kubernetes-models/${doc.apiVersion}/${doc.kind}`;
}

function schemaProblems(doc) {
  const mod = modelModule(doc);
  if (!mod) return ['apiVersion/kind missing or malformed'];
  let Model;
  try {
    Model = require(mod)[doc.kind];
  } catch (e) {
    return [`no Kubernetes type ${doc.apiVersion} ${doc.kind}`];
  }
  try {
    new Model(doc).validate();
    return [];
  } catch (e) {
    return [e.message.replace(/^data\//, '').replace(/, data\//g, ', ')];
  }
}

// Type-checks every document at once (one TypeScript program is much cheaper
// than one per document). Returns one array of problems per document.
function unknownFieldProblems(docs) {
  const dir = __dirname;
  const sources = new Map();
  const results = docs.map(() => []);
  const fileOf = [];
  docs.forEach((doc, i) => {
    const mod = modelModule(doc);
    const file = path.join(dir, `__manifest_${i}.ts`);
    fileOf.push(file);
    if (!mod) {
      results[i].push('apiVersion/kind missing or malformed');
      return;
    }
    const resolved = ts.resolveModuleName(mod, file, compilerOptions(), ts.sys).resolvedModule;
    if (!resolved) {
      results[i].push(`no Kubernetes type ${doc.apiVersion} ${doc.kind}`);
      return;
    }
    sources.set(file, `import type { I${doc.kind} as T } from ${JSON.stringify(mod)};\n` +
      `export const manifest: T = ${JSON.stringify(doc, null, 1)};\n`);
  });
  if (!sources.size) return results;
  const host = ts.createCompilerHost(compilerOptions());
  const baseGetSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    sources.has(path.resolve(name))
      ? ts.createSourceFile(name, sources.get(path.resolve(name)), lang)
      : baseGetSourceFile(name, lang, ...rest);
  const baseFileExists = host.fileExists.bind(host);
  host.fileExists = (name) => sources.has(path.resolve(name)) || baseFileExists(name);
  const program = ts.createProgram([...sources.keys()], compilerOptions(), host);
  const diags = [...program.getSyntacticDiagnostics(), ...program.getSemanticDiagnostics(), ...program.getGlobalDiagnostics()];
  for (const d of diags) {
    const text = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    const i = d.file ? fileOf.indexOf(path.resolve(d.file.fileName)) : -1;
    if (i >= 0) {
      results[i].push(`${fieldPath(d)}${text}`);
    } else {
      // A problem in the library types themselves: blame every document.
      results.forEach((r) => r.push(`TypeScript: ${text}`));
    }
  }
  return results;
}

function compilerOptions() {
  return {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2020.d.ts'],
    target: ts.ScriptTarget.ES2020,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
  };
}

// The JSON keys from the document's root down to the diagnostic's position,
// e.g. "spec.template.spec.containers[0].securityContext: ".
function fieldPath(diag) {
  if (!diag.file || diag.start === undefined) return '';
  let node = findNode(diag.file, diag.start);
  const parts = [];
  while (node && !ts.isVariableDeclaration(node)) {
    const parent = node.parent;
    if (parent && ts.isPropertyAssignment(parent) && parent.initializer === node) {
      parts.unshift(`.${parent.name.text}`);
    } else if (parent && ts.isArrayLiteralExpression(parent)) {
      parts.unshift(`[${parent.elements.indexOf(node)}]`);
    }
    node = parent;
  }
  const p = parts.join('').replace(/^\./, '');
  return p ? `${p}: ` : '';
}

function findNode(node, pos) {
  for (const child of node.getChildren()) {
    if (child.getStart() <= pos && pos < child.getEnd()) return findNode(child, pos);
  }
  return node;
}

// ---------------------------------------------------------------- layer 3

// Reads what the binary says about itself from its --help text.
function helpFacts(text) {
  const port = /\(default [^()\s]*:(\d+)\)/.exec(text);
  const user = /runs as user (\d+):(\d+)/.exec(text);
  const health = /health check: GET (\/\S*)/.exec(text);
  const missing = [];
  if (!port) missing.push('"(default ADDR:PORT)"');
  if (!user) missing.push('"runs as user UID:GID"');
  if (!health) missing.push('"health check: GET PATH"');
  if (missing.length) return { missing };
  return {
    port: Number(port[1]),
    uid: Number(user[1]),
    gid: Number(user[2]),
    healthPath: health[1],
  };
}

function isWorkload(doc) {
  return doc && doc.apiVersion === 'apps/v1' && ['DaemonSet', 'Deployment'].includes(doc.kind);
}

function label(doc) {
  const m = (doc && doc.metadata) || {};
  return `${doc && doc.kind}/${m.name}`;
}

function get(obj, dotted) {
  return dotted.split('.').reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), obj);
}

// CPU in millicores, memory in bytes; NaN if unparsable.
function quantity(q, kind) {
  const m = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(q));
  if (!m) return NaN;
  const n = Number(m[1]);
  const unit = m[2] || '';
  const scale = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 }[unit];
  return kind === 'cpu' ? n * scale * 1000 : n * scale;
}

function mainContainer(doc) {
  const cs = get(doc, 'spec.template.spec.containers') || [];
  return cs.find((c) => c && c.name === 'quinistry') || cs[0] || {};
}

// The port the server listens on inside the pod: PORT from env, else the
// binary's default.
function listenPort(container, facts) {
  const env = (container.env || []).find((e) => e && e.name === 'PORT');
  return env ? Number(env.value) : facts.port;
}

function resolvePort(container, p) {
  if (typeof p === 'number') return p;
  const named = (container.ports || []).find((x) => x && x.name === p);
  return named ? named.containerPort : NaN;
}

function labelProblems(doc) {
  const out = [];
  const meta = get(doc, 'metadata.labels') || {};
  const tmpl = get(doc, 'spec.template.metadata.labels') || {};
  const sel = get(doc, 'spec.selector.matchLabels');
  for (const [where, labels] of [['metadata.labels', meta], ['spec.template.metadata.labels', tmpl]]) {
    if (labels[NAME_LABEL] !== 'quinistry') out.push(`${where} lacks ${NAME_LABEL}: quinistry`);
    if (!/^[1-9][0-9]*$/.test(String(labels[GENERATION_LABEL]))) out.push(`${where} lacks a ${GENERATION_LABEL} label`);
  }
  if (meta[GENERATION_LABEL] !== tmpl[GENERATION_LABEL]) out.push('generation label differs between the object and its pods');
  if (!sel || !Object.keys(sel).length) {
    out.push('no explicit spec.selector.matchLabels');
  } else {
    for (const [k, v] of Object.entries(sel)) {
      if (tmpl[k] !== v) out.push(`selector ${k}=${v} does not match the pod template`);
    }
    if (GENERATION_LABEL in sel) out.push('the generation label must not be in the (immutable) selector');
  }
  return out;
}

function hardeningProblems(doc, facts) {
  const out = [];
  const pod = get(doc, 'spec.template.spec') || {};
  const psc = pod.securityContext || {};
  if (psc.runAsNonRoot !== true) out.push('pod runAsNonRoot is not true');
  if (psc.runAsUser !== facts.uid) out.push(`pod runAsUser ${psc.runAsUser} != ${facts.uid} (from --help)`);
  if (psc.runAsGroup !== facts.gid) out.push(`pod runAsGroup ${psc.runAsGroup} != ${facts.gid} (from --help)`);
  if (get(psc, 'seccompProfile.type') !== 'RuntimeDefault') out.push('pod seccompProfile is not RuntimeDefault');
  if (pod.hostNetwork || pod.hostPID || pod.hostIPC) out.push('pod uses a host namespace');
  if (pod.automountServiceAccountToken !== false) out.push('automountServiceAccountToken is not false');
  for (const c of [...(pod.initContainers || []), ...(pod.containers || [])]) {
    const sc = c.securityContext || {};
    const n = `container ${c.name}`;
    if (sc.allowPrivilegeEscalation !== false) out.push(`${n}: allowPrivilegeEscalation is not false`);
    if (sc.readOnlyRootFilesystem !== true) out.push(`${n}: readOnlyRootFilesystem is not true`);
    if (sc.privileged) out.push(`${n}: privileged`);
    const drop = get(sc, 'capabilities.drop') || [];
    if (!drop.includes('ALL')) out.push(`${n}: capabilities do not drop ALL`);
    if ((get(sc, 'capabilities.add') || []).length) out.push(`${n}: adds capabilities`);
    if (sc.runAsUser !== undefined && sc.runAsUser !== facts.uid) out.push(`${n}: runAsUser ${sc.runAsUser} != ${facts.uid}`);
    if (sc.runAsGroup !== undefined && sc.runAsGroup !== facts.gid) out.push(`${n}: runAsGroup ${sc.runAsGroup} != ${facts.gid}`);
  }
  return out;
}

function resourceProblems(doc) {
  const out = [];
  for (const c of get(doc, 'spec.template.spec.containers') || []) {
    for (const kind of ['cpu', 'memory']) {
      const req = quantity(get(c, `resources.requests.${kind}`), kind);
      const lim = quantity(get(c, `resources.limits.${kind}`), kind);
      if (!(req > 0)) out.push(`container ${c.name}: no ${kind} request`);
      if (!(lim > 0)) out.push(`container ${c.name}: no ${kind} limit`);
      if (req > lim) out.push(`container ${c.name}: ${kind} request exceeds the limit`);
    }
    // Small, as the comment in the manifest argues; a limit far above what
    // the server can use would hide a leak.
    const mem = quantity(get(c, 'resources.limits.memory'), 'memory');
    if (mem > 256 * 1024 ** 2) out.push(`container ${c.name}: memory limit above 256Mi`);
  }
  return out;
}

function portProblems(doc, facts) {
  const out = [];
  const c = mainContainer(doc);
  const port = listenPort(c, facts);
  const http = (c.ports || []).find((p) => p && p.name === 'http');
  if (!http) {
    out.push('no container port named http');
  } else if (http.containerPort !== port) {
    out.push(`containerPort ${http.containerPort} != listening port ${port} (${(c.env || []).some((e) => e.name === 'PORT') ? 'PORT env' : 'binary default'})`);
  }
  for (const kind of ['readinessProbe', 'livenessProbe']) {
    const p = c[kind];
    if (!p || !p.httpGet) {
      out.push(`no ${kind} with httpGet`);
      continue;
    }
    if (p.httpGet.path !== facts.healthPath) out.push(`${kind} path ${p.httpGet.path} != ${facts.healthPath} (from --help)`);
    if (resolvePort(c, p.httpGet.port) !== port) out.push(`${kind} port ${p.httpGet.port} != listening port ${port}`);
    if ((p.httpGet.scheme || 'HTTP') !== 'HTTP') out.push(`${kind} scheme is not HTTP`);
    if (!(p.timeoutSeconds >= 1 && p.timeoutSeconds <= MAX_PROBE_TIMEOUT)) out.push(`${kind} timeoutSeconds not in 1..${MAX_PROBE_TIMEOUT}`);
  }
  const grace = get(doc, 'spec.template.spec.terminationGracePeriodSeconds');
  if (!(grace >= 2 && grace <= MAX_GRACE)) out.push(`terminationGracePeriodSeconds ${grace} not in 2..${MAX_GRACE}`);
  return out;
}

// The container's args: only options that --help lists, never a listen
// address (the port must come from PORT or the default, which is what the
// probes and containerPort are checked against), and a connection bound.
function argsProblems(doc, helpText) {
  const out = [];
  const c = mainContainer(doc);
  if (c.command !== undefined) out.push('command overrides the image entrypoint');
  const args = c.args || [];
  for (const a of args) {
    if (!/^-/.test(a)) continue;
    const escaped = a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    if (!new RegExp(`(^|[\\s,])${escaped}([\\s,]|$)`, 'm').test(helpText)) out.push(`option ${a} is not in --help`);
    if (a === '-l' || a === '--listen' || a.startsWith('--listen=')) out.push('args set a listen address');
  }
  const max = maxConns(c);
  if (!(max > 0)) out.push('no --max-conns N');
  return out;
}

function maxConns(container) {
  const args = container.args || [];
  const i = args.findIndex((a) => a === '--max-conns' || a === '-c');
  return i >= 0 && /^[1-9][0-9]*$/.test(args[i + 1] || '') ? Number(args[i + 1]) : NaN;
}

// Ties the documents together: parent, child and registry by component.
function findByComponent(all, kind, component) {
  return all.find((d) => d && d.kind === kind && (get(d, 'metadata.labels') || {})[COMPONENT_LABEL] === component);
}

function parentChildProblems(parent, child) {
  const out = [];
  if (!parent) return ['no DaemonSet with component=parent'];
  if (!child) return ['no DaemonSet with component=child'];
  const pc = mainContainer(parent);
  const cc = mainContainer(child);
  const hostPortOf = (c) => ((c.ports || []).find((p) => p && p.name === 'http') || {}).hostPort;
  const parentHost = hostPortOf(pc);
  const childHost = hostPortOf(cc);
  if (pc.image !== 'quinistry:latest') out.push(`parent image ${pc.image} != quinistry:latest (the name \`quinistry export\` tags)`);
  if (pc.imagePullPolicy !== 'Never') out.push('parent imagePullPolicy is not Never (it has no registry to pull from)');
  if (!(parentHost > 0)) out.push('parent has no hostPort');
  if (!(childHost > 0)) out.push('child has no hostPort');
  if (parentHost === childHost) out.push('parent and child share a hostPort');
  const m = /^localhost:(\d+)\/quinistry:latest$/.exec(cc.image || '');
  if (!m) {
    out.push(`child image ${cc.image} is not localhost:PORT/quinistry:latest`);
  } else if (Number(m[1]) !== parentHost) {
    out.push(`child pulls from localhost:${m[1]} but the parent's hostPort is ${parentHost}`);
  }
  const gen = (d) => Number((get(d, 'spec.template.metadata.labels') || {})[GENERATION_LABEL]);
  if (gen(child) !== gen(parent) + 1) out.push(`child generation ${gen(child)} is not parent generation ${gen(parent)} + 1`);
  return out;
}

function serviceProblems(deployment, service, facts) {
  const out = [];
  if (!deployment) return ['no Deployment with component=registry'];
  if (!service) return ['no Service with component=registry'];
  const c = mainContainer(deployment);
  if (!(c.env || []).some((e) => e && e.name === 'PORT')) out.push('registry Deployment does not set PORT');
  const port = listenPort(c, facts);
  const tmpl = get(deployment, 'spec.template.metadata.labels') || {};
  const sel = get(service, 'spec.selector') || {};
  if (!Object.keys(sel).length) out.push('Service has no selector');
  for (const [k, v] of Object.entries(sel)) if (tmpl[k] !== v) out.push(`Service selector ${k}=${v} does not match the pods`);
  const ports = get(service, 'spec.ports') || [];
  if (!ports.length) out.push('Service has no ports');
  for (const p of ports) {
    const target = p.targetPort === undefined ? p.port : resolvePort(c, p.targetPort);
    if (target !== port) out.push(`Service port ${p.port} targets ${p.targetPort}, but the pod listens on ${port}`);
  }
  return out;
}

// ---------------------------------------------------------------- driver

// Runs layers 1 and 2 over named YAML texts; returns per-text results.
function validateTexts(named) {
  const parsed = named.map(({ name, text }) => ({ name, ...parseManifest(text) }));
  const flat = [];
  for (const p of parsed) for (const d of p.docs) flat.push(d.value);
  const unknown = unknownFieldProblems(flat);
  let k = 0;
  for (const p of parsed) {
    for (const d of p.docs) {
      d.schema = schemaProblems(d.value);
      d.unknown = unknown[k++];
    }
  }
  return parsed;
}

// The problems one layer ('yaml', 'schema' or 'unknown') found in a text.
function layerProblems(result, layer) {
  return layer === 'yaml' ? result.problems : result.docs.flatMap((d) => d[layer]);
}

const LAYER_NAMES = { yaml: 'YAML check', schema: 'schema check', unknown: 'unknown-field check' };

// Each self-test edits one real manifest and expects that exact edit to be
// caught by the layer that `layer` names (the others may catch it too).
function selfTests(texts) {
  const byName = (suffix) => texts.find((t) => t.name.endsWith(suffix));
  const edit = (suffix, fn) => {
    const src = byName(suffix);
    if (!src) return null;
    const docs = YAML.parseAllDocuments(src.text);
    fn(docs);
    return docs.map((d) => d.toString()).join('---\n');
  };
  const C0 = ['spec', 'template', 'spec', 'containers', 0];
  return [
    {
      what: 'a misspelt field (containers[0].securityContext.readOnlyRootFilesytem)',
      text: edit('parent.yaml', (d) => {
        d[0].deleteIn([...C0, 'securityContext', 'readOnlyRootFilesystem']);
        d[0].setIn([...C0, 'securityContext', 'readOnlyRootFilesytem'], true);
      }),
      layer: 'unknown',
      expect: /readOnlyRootFilesytem/,
    },
    {
      what: 'an unknown field in DaemonSet spec (spec.replicas)',
      text: edit('child.yaml', (d) => d[0].setIn(['spec', 'replicas'], 2)),
      layer: 'unknown',
      expect: /replicas/,
    },
    {
      what: 'an unknown top-level field in a Service (spec2)',
      text: edit('registry.yaml', (d) => d[1].set('spec2', {})),
      layer: 'unknown',
      expect: /spec2/,
    },
    {
      what: 'a wrong type (containerPort: "8080", a string)',
      text: edit('parent.yaml', (d) => d[0].setIn([...C0, 'ports', 0, 'containerPort'], '8080')),
      layer: 'schema',
      expect: /containerPort/,
    },
    {
      what: 'a wrong type (an unquoted number as a label value)',
      text: edit('parent.yaml', (d) => d[0].setIn(['spec', 'template', 'metadata', 'labels', GENERATION_LABEL], 1)),
      layer: 'schema',
      expect: /labels/,
    },
    {
      what: 'a value outside an enum (imagePullPolicy: Sometimes)',
      text: edit('parent.yaml', (d) => d[0].setIn([...C0, 'imagePullPolicy'], 'Sometimes')),
      layer: 'schema',
      expect: /imagePullPolicy/,
    },
    {
      what: 'a malformed quantity (memory: 64MB)',
      text: edit('parent.yaml', (d) => d[0].setIn([...C0, 'resources', 'limits', 'memory'], '64MB')),
      layer: 'schema',
      expect: /memory/,
    },
    {
      what: 'a duplicate key',
      text: (byName('parent.yaml') || {}).text && byName('parent.yaml').text.replace(/^kind: DaemonSet$/m, 'kind: DaemonSet\nkind: DaemonSet'),
      layer: 'yaml',
      expect: /unique|duplicate/i,
    },
    {
      what: 'a scalar that YAML 1.1 reads as a boolean (label value on)',
      text: (byName('parent.yaml') || {}).text && byName('parent.yaml').text.replace(/^(\s+app\.kubernetes\.io\/component: )parent$/m, '$1on'),
      layer: 'yaml',
      expect: /YAML 1\.1/,
    },
  ];
}

function main(argv) {
  let helpFile = null;
  let factsOut = null;
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help-text') helpFile = argv[++i];
    else if (argv[i] === '--facts-out') factsOut = argv[++i];
    else files.push(argv[i]);
  }
  if (!helpFile || !files.length) {
    console.error('usage: validate.js --help-text FILE [--facts-out FILE] MANIFEST...');
    return 2;
  }

  const texts = files.map((name) => ({ name, text: fs.readFileSync(name, 'utf8') }));
  const tests = selfTests(texts);
  // Everything goes through one TypeScript program: the real manifests first.
  const results = validateTexts([...texts, ...tests.map((t, i) => ({ name: `self-test ${i + 1}`, text: t.text || '' }))]);

  const all = [];
  texts.forEach((t, i) => {
    const r = results[i];
    const n = r.docs.length;
    report(!r.problems.length, `${t.name}: strict YAML, ${n} document${n === 1 ? '' : 's'}, same under YAML 1.1 and 1.2`, r.problems);
    for (const d of r.docs) {
      all.push(d.value);
      report(!d.schema.length, `${t.name} ${label(d.value)}: valid against the Kubernetes API schema (kubernetes-models ${MODELS_VERSION})`, d.schema);
      report(!d.unknown.length, `${t.name} ${label(d.value)}: no unknown fields (TypeScript excess-property check)`, d.unknown);
    }
  });

  tests.forEach((t, i) => {
    const r = results[texts.length + i];
    const problems = layerProblems(r, t.layer);
    const caught = Boolean(t.text) && problems.some((p) => t.expect.test(p));
    if (process.env.VALIDATE_VERBOSE) console.error(`# self-test ${i + 1} (${t.layer}): ${problems.join(' | ')}`);
    report(caught, `self-test: the ${LAYER_NAMES[t.layer]} rejects ${t.what}`,
      caught ? [] : [t.text ? `not caught there; problems: ${problems.join('; ') || 'none'}` : 'manifest to edit not given']);
  });

  const helpText = fs.readFileSync(helpFile, 'utf8');
  const facts = helpFacts(helpText);
  report(!facts.missing, `quinistry --help states its default port, user and health path${facts.missing ? '' : ` (${facts.port}, ${facts.uid}:${facts.gid}, GET ${facts.healthPath})`}`,
    facts.missing ? [`missing ${facts.missing.join(', ')}`] : []);
  if (facts.missing) return 1;

  for (const w of all.filter(isWorkload)) {
    const c = mainContainer(w);
    report(!labelProblems(w).length, `${label(w)}: labels (${NAME_LABEL}, ${GENERATION_LABEL}=${get(w, 'metadata.labels') && w.metadata.labels[GENERATION_LABEL]}) and an explicit selector`, labelProblems(w));
    report(!hardeningProblems(w, facts).length, `${label(w)}: non-root ${facts.uid}:${facts.gid}, RuntimeDefault seccomp, read-only root, no privilege escalation, all capabilities dropped`, hardeningProblems(w, facts));
    report(!resourceProblems(w).length, `${label(w)}: CPU and memory requests and limits (memory ${get(c, 'resources.requests.memory')}/${get(c, 'resources.limits.memory')})`, resourceProblems(w));
    report(!argsProblems(w, helpText).length, `${label(w)}: args ${JSON.stringify(c.args || [])} are options --help lists, connections bounded`, argsProblems(w, helpText));
    report(!portProblems(w, facts).length, `${label(w)}: listens on ${listenPort(c, facts)}, containerPort and probes (GET ${facts.healthPath}) agree`, portProblems(w, facts));
  }

  const parent = findByComponent(all, 'DaemonSet', 'parent');
  const child = findByComponent(all, 'DaemonSet', 'child');
  const pcp = parentChildProblems(parent, child);
  report(!pcp.length, 'parent/child: child image localhost:<parent hostPort>/quinistry:latest, distinct hostPorts, generation 1 -> 2', pcp);

  const deployment = findByComponent(all, 'Deployment', 'registry');
  const service = findByComponent(all, 'Service', 'registry');
  const sp = serviceProblems(deployment, service, facts);
  report(!sp.length, 'registry: Deployment sets PORT; containerPort, probes and Service targetPort match it', sp);

  // The consistency checks must bite too: feed them wrong values.
  if (parent && child) {
    const moved = JSON.parse(JSON.stringify(child));
    mainContainer(moved).image = 'localhost:5002/quinistry:latest';
    report(parentChildProblems(parent, moved).some((p) => /5002/.test(p)), 'self-test: a child image that names another port than the parent hostPort is caught');
    const wrongPath = JSON.parse(JSON.stringify(parent));
    mainContainer(wrongPath).readinessProbe.httpGet.path = '/healthz';
    report(portProblems(wrongPath, facts).some((p) => /healthz/.test(p)), 'self-test: a probe path other than the one --help names is caught');
    const root = JSON.parse(JSON.stringify(parent));
    root.spec.template.spec.securityContext.runAsUser = 0;
    report(hardeningProblems(root, facts).some((p) => /runAsUser 0/.test(p)), 'self-test: runAsUser 0 is caught');
    const badOption = JSON.parse(JSON.stringify(parent));
    mainContainer(badOption).args = ['--max-connections', '4096'];
    report(argsProblems(badOption, helpText).some((p) => /--max-connections is not in --help/.test(p)), 'self-test: an option --help does not list is caught');
  }

  if (factsOut && parent && child) {
    const pc = mainContainer(parent);
    const cc = mainContainer(child);
    const hp = (c) => (c.ports || []).find((p) => p && p.name === 'http').hostPort;
    const q = (v) => `'${String(v).replace(/'/g, `'\\''`)}'`;
    const lines = {
      K8S_PARENT_IMAGE: pc.image,
      K8S_PARENT_HOSTPORT: hp(pc),
      K8S_CHILD_IMAGE: cc.image,
      K8S_CHILD_HOSTPORT: hp(cc),
      K8S_PROBE_PATH: get(pc, 'readinessProbe.httpGet.path'),
      K8S_PROBE_TIMEOUT: Math.min(get(pc, 'readinessProbe.timeoutSeconds'), get(pc, 'livenessProbe.timeoutSeconds')),
      K8S_RUN_AS: `${get(parent, 'spec.template.spec.securityContext.runAsUser')}:${get(parent, 'spec.template.spec.securityContext.runAsGroup')}`,
      K8S_GRACE: get(parent, 'spec.template.spec.terminationGracePeriodSeconds'),
      K8S_MEM_REQUEST_BYTES: quantity(get(pc, 'resources.requests.memory'), 'memory'),
      K8S_MEM_LIMIT_BYTES: quantity(get(pc, 'resources.limits.memory'), 'memory'),
      K8S_ARGS: (pc.args || []).join(' '),
      K8S_MAX_CONNS: maxConns(pc),
      K8S_CPU_LIMIT: quantity(get(pc, 'resources.limits.cpu'), 'cpu') / 1000,
    };
    fs.writeFileSync(factsOut, Object.entries(lines).map(([k, v]) => `${k}=${q(v)}\n`).join(''));
  }
  return failures ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
