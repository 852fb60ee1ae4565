"use strict";

// A plain reader for the app's own OpenAPI document, so that /docs needs no CDN.

let components = {};

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, attributes);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function resolve(schema) {
  if (schema && schema.$ref) return components[schema.$ref.split("/").pop()] || {};
  return schema || {};
}

function typeName(schema) {
  schema = resolve(schema);
  if (schema.anyOf) {
    return schema.anyOf.filter((option) => option.type !== "null").map(typeName).join(" | ");
  }
  if (schema.enum) return schema.enum.map((value) => JSON.stringify(value)).join(" | ");
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.type === "array") return `list of ${typeName(schema.items)}`;
  if (schema.contentMediaType === "application/json") return `JSON text: ${typeName(schema.contentSchema)}`;
  if (schema.format === "binary") return "file";
  return schema.title && schema.properties ? schema.title : schema.type || "any";
}

function constraints(schema) {
  const parts = [];
  for (const option of schema.anyOf || [schema]) {
    if (option.minimum !== undefined) parts.push(`≥ ${option.minimum}`);
    if (option.maximum !== undefined) parts.push(`≤ ${option.maximum}`);
  }
  if (schema.default !== undefined && schema.default !== null) parts.push(`default ${JSON.stringify(schema.default)}`);
  return parts.join(", ");
}

function propertiesTable(schema) {
  schema = resolve(schema);
  const required = new Set(schema.required || []);
  const rows = Object.entries(schema.properties || {}).map(([name, property]) =>
    element(
      "tr",
      {},
      element("td", {}, element("code", { textContent: name }), required.has(name) ? " *" : ""),
      element("td", { textContent: typeName(property) }),
      element("td", { textContent: [property.description, constraints(property)].filter(Boolean).join("; ") }),
    ),
  );
  const head = element("tr", {}, ...["field", "type", "meaning"].map((text) => element("th", { textContent: text })));
  return element("table", {}, element("thead", {}, head), element("tbody", {}, ...rows));
}

function contentSection(title, content) {
  return Object.entries(content || {})
    .filter(([, { schema }]) => resolve(schema).properties)
    .map(([mediaType, { schema }]) =>
      element("div", {}, element("h4", { textContent: `${title}: ${mediaType}` }), propertiesTable(schema)),
    );
}

function operationCard(path, method, operation) {
  const responses = Object.entries(operation.responses || {}).map(([status, response]) =>
    element(
      "li",
      {},
      element("code", { textContent: status }),
      ` ${response.description || ""} `,
      element("span", { className: "help", textContent: Object.keys(response.content || {}).join(", ") }),
    ),
  );
  return element(
    "section",
    { className: "card" },
    element("h2", {}, element("span", { className: "method", textContent: method.toUpperCase() }), ` ${path}`),
    operation.description || operation.summary ? element("p", { textContent: operation.description || operation.summary }) : null,
    ...contentSection("request", operation.requestBody?.content),
    element("h4", { textContent: "responses" }),
    element("ul", {}, ...responses),
    ...contentSection("200", operation.responses?.["200"]?.content),
  );
}

async function render() {
  const root = document.getElementById("docs");
  try {
    const response = await fetch("/openapi.json");
    const spec = await response.json();
    components = spec.components?.schemas || {};
    const cards = Object.entries(spec.paths).flatMap(([path, operations]) =>
      Object.entries(operations).map(([method, operation]) => operationCard(path, method, operation)),
    );
    root.replaceChildren(
      element("p", { className: "help", textContent: `${spec.info.title} ${spec.info.version}. ${spec.info.summary || ""}` }),
      ...cards,
    );
  } catch (error) {
    root.replaceChildren(element("p", { className: "message", textContent: `Could not read /openapi.json: ${error.message}` }));
  }
}

render();
