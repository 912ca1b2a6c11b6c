// Validates Kubernetes objects against models generated from the
// Kubernetes OpenAPI specification, as the API server's strict field
// validation would: every field must be one the kind defines (nested,
// through lists and maps), with the right JSON type, and the kind's own
// schema (required fields, formats, integer ranges) must accept it.
//
//   node validate.mjs < objects.json     # a JSON array of objects
//
// Prints one line per problem ("Kind/name: path: what") and exits 1 if
// there is any, 0 otherwise. Sources: @kubernetes/client-node's models
// (each class's attributeTypeMap lists its fields and their types) and
// kubernetes-models (the schemas compiled to validators).
// The generated models only: the package's entry point also loads its
// HTTP client, which needs a newer Node than Debian's.
import * as k8s from "@kubernetes/client-node/dist/gen/models/all.js";

const problems = [];

function className(apiVersion, kind) {
  const version = apiVersion.includes("/") ? apiVersion.split("/")[1] : apiVersion;
  return version.charAt(0).toUpperCase() + version.slice(1) + kind;
}

// Walks `value` as type `type` (a type string of the generated models).
function walk(value, type, path, where) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (!Array.isArray(value)) return problems.push(`${where}: ${path}: expected a list`);
    value.forEach((v, i) => walk(v, m[1], `${path}[${i}]`, where));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (typeof value !== "object" || Array.isArray(value)) return problems.push(`${where}: ${path}: expected a map`);
    for (const [k, v] of Object.entries(value)) walk(v, m[1], `${path}.${k}`, where);
    return;
  }
  if (type === "string" || type === "Date") {
    if (typeof value !== "string") problems.push(`${where}: ${path}: expected a string`);
    return;
  }
  if (type === "number") {
    if (typeof value !== "number") problems.push(`${where}: ${path}: expected a number`);
    return;
  }
  if (type === "boolean") {
    if (typeof value !== "boolean") problems.push(`${where}: ${path}: expected a boolean`);
    return;
  }
  const cls = k8s[type];
  if (!cls || typeof cls.getAttributeTypeMap !== "function") return;  // any, object, IntOrString
  if (typeof value !== "object" || Array.isArray(value)) return problems.push(`${where}: ${path}: expected an object (${type})`);
  const fields = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!fields.has(k)) {
      problems.push(`${where}: ${path ? path + "." : ""}${k}: unknown field (${type} has no "${k}")`);
      continue;
    }
    walk(v, fields.get(k), path ? `${path}.${k}` : k, where);
  }
}

async function schemaCheck(obj, where) {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  let mod;
  try {
    mod = await import(`kubernetes-models/${group ? group + "/" : ""}${version}/${obj.kind}`);
  } catch {
    return problems.push(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
  }
  try {
    new mod[obj.kind](obj).validate();
  } catch (e) {
    problems.push(`${where}: ${String(e.message).replace(/\s+/g, " ")}`);
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const objects = JSON.parse(input);
for (const obj of objects) {
  const where = `${obj.kind}/${obj.metadata?.name ?? "?"}`;
  const cls = className(obj.apiVersion ?? "", obj.kind ?? "");
  if (!k8s[cls]) {
    problems.push(`${where}: ${obj.apiVersion} ${obj.kind} is not a Kubernetes kind`);
    continue;
  }
  walk(obj, cls, "", where);
  await schemaCheck(obj, where);
}
for (const p of problems) console.log(p);
console.log(`${objects.length} objects, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
